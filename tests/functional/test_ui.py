"""The web UI through the whole WSGI app: every page and tab, as anonymous, member, owner and
admin; what is hidden is absent from the HTML; forms refuse a missing CSRF token."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from webtest import TestApp

from repoproxy.domain import channels, members, packages, users
from repoproxy.testing.packages import PackageSpec, build_package

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}
CONDA = {"Accept": "*/*", "User-Agent": "conda/24.1.2 requests/2.31.0 CPython/3.11.7 "
         "Linux/6.1 debian/12 glibc/2.36"}
RATTLER = {"Accept": "*/*", "User-Agent": "rattler/0.28.0 pixi/0.40.0"}
PASSWORD = "correct horse battery"
TABS = ("overview", "files", "dependencies", "readme", "cves", "badges", "downloads")


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def csrf(response: Any) -> str:
    field = soup(response).find("input", attrs={"name": "csrf_token"})
    assert field is not None, "the page has no form with a CSRF token"
    return str(field["value"])


def sign_in(app: TestApp, name: str, password: str = PASSWORD, status: int = 303) -> Any:
    page = app.get("/ui/login", headers=HTML)
    return app.post("/ui/login", {"username": name, "password": password,
                                  "csrf_token": csrf(page), "next": "/ui/"},
                    headers=HTML, status=status)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One server root for the module (building it is the slow part): pub (public) and priv
    (private) channels; alice owns priv, bob is a member, carol is a user with no membership,
    root is an admin. Tests that change things use names of their own."""
    import os

    from repoproxy.domain.core import load_core

    tmp = tmp_path_factory.mktemp("ui")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    svc = load_core({"repoproxy.root": str(tmp / "root"), "repoproxy.log_requests": "false",
                     "repoproxy.auth.max_failures": "3",
                     "repoproxy.auth.max_failures_per_address": "0"}, env)
    for name, privacy, description in (("pub", "public", "Public packages"),
                                       ("priv", "private", "Secret things"),
                                       ("team", "private", "")):
        channels.create_channel(svc, name, description, privacy)
    for name, role in (("alice", "user"), ("bob", "user"), ("carol", "user"),
                       ("root", "admin"), ("frank", "user"), ("victim", "user")):
        users.add_user(svc, name, PASSWORD, role)
    members.add_member(svc, "priv", "alice", "owner")
    members.add_member(svc, "priv", "bob", "member")
    members.add_member(svc, "priv", "frank", "member")
    members.add_member(svc, "team", "alice", "owner")
    pkgs = tmp / "built"
    pkgs.mkdir()
    specs = [
        PackageSpec("widget", "1.9", depends=["python >=3.8"], about={
            "summary": "A widget",
            "description": "# Widget\n\n<script>alert(1)</script> **bold**"}),
        PackageSpec("widget", "1.10", subdir="linux-64", depends=["python >=3.8", "gadget"]),
        PackageSpec("gadget", "0.1", depends=["widget"]),
    ]
    for spec in specs:
        path = build_package(spec, pkgs)
        for channel in ("pub", "priv"):
            packages.upload_file(svc, channel, path)
    packages.upload_file(svc, "priv", build_package(PackageSpec("topsecret", "1.0"), pkgs))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def wsgi(core: Any) -> Any:
    from repoproxy.web.app import make_app

    return make_app(core)


@pytest.fixture
def services(core: Any) -> Any:
    return core


@pytest.fixture
def testapp(wsgi: Any) -> TestApp:
    return TestApp(wsgi)  # a fresh cookie jar per test


@pytest.fixture
def site(core: Any, tmp_path: Path) -> dict[str, Any]:
    pkgs = tmp_path / "built"
    pkgs.mkdir()
    return {"pkgs": pkgs}


def upload_field(path: Path) -> list[tuple[str, str, bytes]]:
    return [("file", path.name, path.read_bytes())]


# --- routing for people --------------------------------------------------------------------
def test_a_browser_at_the_root_is_sent_to_the_ui(testapp: TestApp) -> None:
    assert testapp.get("/", headers=HTML, status=302).location.endswith("/ui/")
    assert testapp.get("/ui", headers=HTML, status=302).location.endswith("/ui/")


@pytest.mark.parametrize("client", [CONDA, RATTLER, {}], ids=["conda", "rattler", "bare"])
def test_conda_clients_see_no_change_at_the_root_channel_and_subdir_urls(
        testapp: TestApp, site: Any, client: dict[str, str]) -> None:
    for url in ("/", "/pub/", "/pub/linux-64/", "/pub/linux-64"):
        r = testapp.get(url, headers=client, status=404)
        assert r.json["error"] == "not-found"  # what these URLs answered before the UI
    r = testapp.get("/pub/noarch/repodata.json", headers=client, status=200)
    assert "packages" in r.json


def test_a_browser_at_a_channel_or_subdir_url_is_sent_to_the_channel_page(
        testapp: TestApp, site: Any) -> None:
    assert testapp.get("/pub/", headers=HTML, status=302).location.endswith(
        "/ui/channels/pub/")
    assert testapp.get("/pub/linux-64/", headers=HTML, status=302).location.endswith(
        "/ui/channels/pub/?subdir=linux-64")
    assert testapp.get("/pub/noarch", headers=HTML, status=302).location.endswith(
        "/ui/channels/pub/?subdir=noarch")
    # files are still files, for browsers too
    testapp.get("/pub/noarch/repodata.json", headers=HTML, status=200)
    # an absent and a hidden channel redirect alike: the redirect tells nothing
    hidden = testapp.get("/priv/", headers=HTML, status=302).location
    absent = testapp.get("/nothere/", headers=HTML, status=302).location
    assert hidden.replace("priv", "X") == absent.replace("nothere", "X")


# --- browsing --------------------------------------------------------------------------------
def test_home_lists_only_readable_channels_with_counts(testapp: TestApp, site: Any) -> None:
    page = soup(testapp.get("/ui/", headers=HTML))
    text = page.get_text(" ")
    assert "pub" in text
    assert "Public packages" in text
    assert "priv" not in text
    assert "Secret things" not in text
    card = page.find("a", string="pub").find_parent("li")
    assert "2 packages" in card.get_text(" ")
    assert "3 files" in card.get_text(" ")
    sign_in(testapp, "bob")
    text = soup(testapp.get("/ui/", headers=HTML)).get_text(" ")
    assert "priv" in text
    assert "Secret things" in text


def test_home_search_finds_packages_only_in_readable_channels(testapp: TestApp,
                                                               site: Any) -> None:
    page = testapp.get("/ui/", {"q": "topsec"}, headers=HTML)
    assert "No package matches" in page.text
    assert "topsecret" not in page.text.replace(
        'value="topsec"', "")
    page = testapp.get("/ui/", {"q": "widg"}, headers=HTML)
    links = [a["href"] for a in soup(page).select("#results-title ~ div a")]
    assert "/ui/channels/pub/packages/widget/" in links
    assert not any("priv" in link for link in links)


def test_channel_page_lists_filters_and_shows_how_to_use(testapp: TestApp, site: Any) -> None:
    page = testapp.get("/ui/channels/pub/", headers=HTML)
    names = [a.get_text() for a in soup(page).select("#packages tbody a")]
    assert names == ["gadget", "widget"]
    assert "conda install --channel http://localhost/pub" in page.text
    assert "micromamba install" in page.text
    assert "pixi project channel add" in page.text
    assert "rattler" in page.text
    # anonymous: no upload form, no members, no token placement
    assert soup(page).find(id="upload-form") is None
    assert soup(page).find(id="members") is None
    assert "YOUR_TOKEN" not in page.text
    filtered = testapp.get("/ui/channels/pub/", {"q": "gad"}, headers=HTML)
    assert [a.get_text() for a in soup(filtered).select("#packages tbody a")] == ["gadget"]
    by_subdir = testapp.get("/ui/channels/pub/", {"subdir": "linux-64"}, headers=HTML)
    assert [a.get_text() for a in soup(by_subdir).select("#packages tbody a")] == ["widget"]


def test_channel_page_paginates(services: Any, testapp: TestApp, tmp_path: Path) -> None:
    channels.create_channel(services, "many")
    paths = [build_package(PackageSpec(f"pkg{i:02d}", "1.0"), tmp_path) for i in range(55)]
    packages.import_files(services, "many", [(p, None) for p in paths])
    first = soup(testapp.get("/ui/channels/many/", headers=HTML))
    assert len(first.select("#packages tbody tr")) == 50
    next_link = first.find("a", rel="next")["href"]
    second = soup(testapp.get(next_link, headers=HTML))
    assert [a.get_text() for a in second.select("#packages tbody a")] == [
        f"pkg{i}" for i in range(50, 55)]


def test_private_channel_shows_where_the_token_goes_and_members_to_owners(
        testapp: TestApp, site: Any) -> None:
    sign_in(testapp, "bob")  # a member: reads, neither uploads nor manages
    page = testapp.get("/ui/channels/priv/", headers=HTML)
    assert "/t/&lt;YOUR_TOKEN&gt;/priv" in page.text
    assert "micromamba auth login http://localhost --bearer" in page.text
    assert soup(page).find(id="members") is None
    assert soup(page).find(id="upload-form") is None
    testapp.get("/ui/channels/priv/tokens", headers=HTML, status=403)
    testapp.reset()
    sign_in(testapp, "alice")  # the owner
    page = soup(testapp.get("/ui/channels/priv/", headers=HTML))
    assert [td.get_text() for td in page.select("#members tbody tr td:first-child")] == [
        "alice", "bob", "frank"]
    assert page.find(id="upload-form") is not None


@pytest.mark.parametrize("tab", TABS)
def test_every_package_tab_renders(testapp: TestApp, site: Any, tab: str) -> None:
    url = "/ui/channels/pub/packages/widget/" + ("" if tab == "overview" else tab)
    page = soup(testapp.get(url, headers=HTML))
    current = page.select_one(".tabs a[aria-current]")
    assert current is not None
    assert current["id"] == f"tab-{tab}"
    assert page.find(id=f"panel-{tab}") is not None


def test_overview_shows_the_latest_version_by_conda_ordering(testapp: TestApp,
                                                             site: Any) -> None:
    page = soup(testapp.get("/ui/channels/pub/packages/widget/", headers=HTML))
    # 1.10 is newer than 1.9 for conda (not for a string comparison)
    assert page.select_one("[data-testid=latest-version]").get_text() == "1.10"


def test_files_tab_shows_sizes_hashes_and_download_links(services: Any, testapp: TestApp,
                                                         site: Any) -> None:
    page = soup(testapp.get("/ui/channels/pub/packages/widget/files", headers=HTML))
    rows = page.select("table.files tbody tr")
    assert len(rows) == 2
    link = rows[0].find("a", download=True)
    body = testapp.get(link["href"]).body
    assert rows[0].find("code", class_="hash").get_text() == hashlib.sha256(body).hexdigest()
    assert [h.get_text() for h in page.select("#panel-files h2")] == ["1.10", "1.9"]
    assert any("SBOM" in a.get_text() for a in page.select("table.files a"))
    only = soup(testapp.get("/ui/channels/pub/packages/widget/files",
                            {"subdir": "noarch"}, headers=HTML))
    assert len(only.select("table.files tbody tr")) == 1


def test_dependencies_tab_links_known_packages_and_lists_dependents(testapp: TestApp,
                                                                     site: Any) -> None:
    page = soup(testapp.get("/ui/channels/pub/packages/widget/dependencies", headers=HTML))
    deps = {a.get_text() for a in page.select("#dependencies a")}
    assert deps == {"gadget"}  # python is not in the channel: named, not linked
    assert "python" in page.select_one("#dependencies").get_text()
    assert [a.get_text() for a in page.select("#dependents a")] == ["gadget"]


def test_readme_is_rendered_with_html_escaped(testapp: TestApp, site: Any) -> None:
    # the newest file (1.10) has no description: its summary is shown; 1.9's markdown
    # is checked through the older channel copy being the only one with a description
    page = testapp.get("/ui/channels/pub/packages/widget/readme", headers=HTML)
    assert "<script>alert(1)</script>" not in page.text


def test_readme_markdown_renders_and_escapes(services: Any, testapp: TestApp,
                                             tmp_path: Path) -> None:
    channels.create_channel(services, "docs")
    path = build_package(PackageSpec("doc", "1.0", about={
        "description": "# Title\n\n<script>alert(1)</script> **bold** "
        "[x](javascript:alert(1))"}), tmp_path)
    packages.upload_file(services, "docs", path)
    page = testapp.get("/ui/channels/docs/packages/doc/readme", headers=HTML)
    article = soup(page).select_one("article.readme")
    assert article.find("h1").get_text() == "Title"
    assert article.find("strong").get_text() == "bold"
    assert article.find("script") is None
    assert "&lt;script&gt;" in page.text
    assert "javascript:" not in str(article.find_all("a"))


def test_badges_tab_gives_copyable_snippets(testapp: TestApp, site: Any) -> None:
    page = soup(testapp.get("/ui/channels/pub/packages/widget/badges", headers=HTML))
    snippets = {pre["id"]: pre.get_text() for pre in page.select(".badge-block pre")}
    assert snippets["badge-version-markdown"].startswith("![widget version](http://")
    assert snippets["badge-version-html"].startswith("<img src=")
    assert snippets["badge-version-rst"].startswith(".. image:: ")
    assert page.select_one("button.copy[data-copy=badge-version-markdown]") is not None


def test_a_hidden_channel_answers_like_an_absent_one(testapp: TestApp, site: Any) -> None:
    # anonymous: sign in first, for both alike
    for url in ("/ui/channels/priv/", "/ui/channels/nothere/"):
        assert "/ui/login" in testapp.get(url, headers=HTML, status=303).location
    sign_in(testapp, "carol")  # no membership
    for suffix in ("", "packages/topsecret/", "packages/topsecret/files"):
        hidden = testapp.get(f"/ui/channels/priv/{suffix}", headers=HTML, status=404)
        absent = testapp.get(f"/ui/channels/nothere/{suffix}", headers=HTML, status=404)
        assert hidden.text == absent.text
        assert "topsecret" not in hidden.text
        assert "Secret things" not in hidden.text


def test_a_member_reads_the_private_package_pages(testapp: TestApp, site: Any) -> None:
    sign_in(testapp, "bob")
    for tab in TABS:
        url = "/ui/channels/priv/packages/topsecret/" + ("" if tab == "overview" else tab)
        testapp.get(url, headers=HTML, status=200)
    # the session cookie works for downloads (GET) too
    page = soup(testapp.get("/ui/channels/priv/packages/topsecret/files", headers=HTML))
    testapp.get(page.select_one("table.files a[download]")["href"], status=200)


# --- signing in --------------------------------------------------------------------------------
def test_sign_in_and_out(testapp: TestApp, site: Any) -> None:
    r = sign_in(testapp, "alice")
    assert r.location.endswith("/ui/")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    page = testapp.get("/ui/", headers=HTML)
    assert soup(page).select_one("[data-testid=signed-in-as]").get_text() == "alice"
    testapp.post("/ui/logout", {"csrf_token": csrf(page)}, headers=HTML, status=303)
    assert soup(testapp.get("/ui/", headers=HTML)).select_one(
        "[data-testid=signed-in-as]") is None


def test_wrong_password_is_refused_and_throttled(testapp: TestApp, site: Any) -> None:
    r = sign_in(testapp, "victim", "wrong", status=400)
    assert "Wrong user name or password" in r.text
    sign_in(testapp, "nobody", "wrong", status=400)
    for _ in range(10):
        r = testapp.post("/ui/login", {"username": "victim", "password": "wrong",
                                       "csrf_token": csrf(testapp.get("/ui/login"))},
                         headers=HTML, expect_errors=True)
        if r.status_int == 429:
            break
    assert r.status_int == 429
    assert "too many failed logins" in r.text
    assert r.headers["Retry-After"]
    # locked out: even the right password waits for the window to end
    sign_in(testapp, "victim", status=429)


def test_forms_refuse_a_missing_csrf_token(testapp: TestApp, site: Any,
                                           services: Any) -> None:
    testapp.get("/ui/login", headers=HTML)
    r = testapp.post("/ui/login", {"username": "alice", "password": PASSWORD},
                     headers=HTML, status=400)
    assert "nothing was changed" in r.text
    sign_in(testapp, "alice")
    path = build_package(PackageSpec("nocsrf", "1.0"), site["pkgs"])
    testapp.post("/ui/channels/priv/upload", upload_files=upload_field(path),
                 headers=HTML, status=400)
    testapp.post("/ui/tokens", {"name": "x"}, headers=HTML, status=400)
    testapp.post("/ui/channels/priv/members", {"user": "carol"}, headers=HTML, status=400)
    testapp.post("/ui/channels/priv/upload", upload_files=upload_field(path),
                 params={"csrf_token": "forged"}, headers=HTML, status=400)
    assert "nocsrf" not in testapp.get("/ui/channels/priv/", headers=HTML).text
    assert [m["user"] for m in members.list_members(services, "priv")] == ["alice", "bob", "frank"]


def test_a_session_cookie_never_authorises_an_api_write(testapp: TestApp, site: Any) -> None:
    sign_in(testapp, "alice")
    r = testapp.post_json("/api/v1/tokens", {"name": "x"}, status=401)
    assert r.json["error"] == "authentication-required"
    # reads (GET) may use it: the channel's repodata for the browser's download links
    testapp.get("/priv/noarch/repodata.json", status=200)


def test_a_new_password_ends_the_session(services: Any, testapp: TestApp, site: Any) -> None:
    sign_in(testapp, "frank")
    testapp.get("/ui/channels/priv/", headers=HTML, status=200)
    users.set_password(services, "frank", "another password")
    assert "/ui/login" in testapp.get("/ui/channels/priv/", headers=HTML, status=303).location


# --- upload ------------------------------------------------------------------------------------
def test_upload_through_the_form_and_its_refusals(testapp: TestApp, site: Any) -> None:
    sign_in(testapp, "alice")
    page = testapp.get("/ui/channels/priv/", headers=HTML)
    path = build_package(PackageSpec("fresh", "2.0", subdir="linux-64"), site["pkgs"])
    r = testapp.post("/ui/channels/priv/upload", {"csrf_token": csrf(page)},
                     upload_files=upload_field(path), headers={**HTML,
                                                                  "Accept": "application/json"},
                     status=201)
    result = r.json["results"][0]
    assert result["ok"]
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "fresh" in testapp.get("/ui/channels/priv/", headers=HTML).text
    # the same file again: refused with the reason, shown on the page without script
    r = testapp.post("/ui/channels/priv/upload", {"csrf_token": csrf(page)},
                     upload_files=upload_field(path), headers=HTML, status=303)
    page = testapp.get(r.location, headers=HTML)
    error = soup(page).select_one(".flash.error").get_text()
    assert "Refused" in error
    assert path.name in error
    bad = site["pkgs"] / "broken-1.0-0.conda"
    bad.write_bytes(b"not a package")
    r = testapp.post("/ui/channels/priv/upload", {"csrf_token": csrf(page)},
                     upload_files=upload_field(bad), headers={"Accept": "application/json"},
                     status=400)
    assert not r.json["results"][0]["ok"]
    assert r.json["results"][0]["error"]


def test_only_writers_may_upload(testapp: TestApp, site: Any) -> None:
    sign_in(testapp, "bob")  # a reading member
    page = testapp.get("/ui/channels/priv/", headers=HTML)
    path = build_package(PackageSpec("nope", "1.0"), site["pkgs"])
    r = testapp.post("/ui/channels/priv/upload", {"csrf_token": csrf(page)},
                     upload_files=upload_field(path), headers=HTML, status=403)
    assert "may not upload" in r.text


# --- tokens, members, admin ---------------------------------------------------------------------
def test_personal_tokens_are_shown_once_listed_and_revoked(testapp: TestApp,
                                                           site: Any) -> None:
    sign_in(testapp, "bob")
    page = testapp.get("/ui/tokens", headers=HTML)
    r = testapp.post("/ui/tokens", {"name": "laptop", "permission": "read",
                                    "csrf_token": csrf(page)}, headers=HTML, status=201)
    assert r.headers["Cache-Control"] == "no-store"
    secret = soup(r).select_one("#new-token").get_text()
    assert secret.startswith("rp-")
    # the token works for the API, as bob
    who = testapp.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).json
    assert who["name"] == "bob"
    listing = testapp.get("/ui/tokens", headers=HTML)
    assert secret not in listing.text
    assert "laptop" in listing.text
    form = soup(listing).select_one("#tokens form")
    testapp.post(form["action"], {"csrf_token": csrf(listing)}, headers=HTML, status=303)
    page = soup(testapp.get("/ui/tokens", headers=HTML))
    assert "laptop" not in str(page.find(id="tokens"))
    assert "revoked" in page.select_one(".flash").get_text()
    testapp.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}, status=401)


def test_owners_create_service_tokens_and_manage_members(services: Any, testapp: TestApp,
                                                         site: Any) -> None:
    sign_in(testapp, "alice")
    page = testapp.get("/ui/channels/priv/tokens", headers=HTML)
    r = testapp.post("/ui/channels/priv/tokens", {"name": "ci", "permission": "write",
                                                  "csrf_token": csrf(page)},
                     headers=HTML, status=201)
    secret = soup(r).select_one("#new-token").get_text()
    path = build_package(PackageSpec("fromci", "1.0"), site["pkgs"])
    testapp.post("/api/v1/upload/priv", path.read_bytes(), headers={
        "Authorization": f"Bearer {secret}", "X-File-Name": path.name,
        "Content-Type": "application/octet-stream"}, status=201)
    page = testapp.get("/ui/channels/team/", headers=HTML)
    testapp.post("/ui/channels/team/members", {"user": "carol", "role": "member",
                                               "csrf_token": csrf(page)},
                 headers=HTML, status=303)
    assert {m["user"] for m in members.list_members(services, "team")} == {"alice", "carol"}
    testapp.post("/ui/channels/team/members/carol/remove", {"csrf_token": csrf(page)},
                 headers=HTML, status=303)
    r = testapp.post("/ui/channels/team/members/alice/remove", {"csrf_token": csrf(page)},
                     headers=HTML, status=303)
    page = testapp.get(r.location, headers=HTML)
    assert "must keep at least one owner" in soup(page).select_one(".flash.error").get_text()


def test_admin_pages_are_for_admins_only(services: Any, testapp: TestApp, site: Any) -> None:
    assert "/ui/login" in testapp.get("/ui/admin/users", headers=HTML, status=303).location
    sign_in(testapp, "alice")
    testapp.get("/ui/admin/users", headers=HTML, status=403)
    testapp.get("/ui/admin/audit", headers=HTML, status=403)
    assert soup(testapp.get("/ui/", headers=HTML)).find("a", string="Users") is None
    testapp.reset()
    sign_in(testapp, "root")
    page = testapp.get("/ui/admin/users", headers=HTML)
    assert {"alice", "bob", "carol", "root"} <= {
        td.get_text() for td in soup(page).select("#users tbody td:first-child")}
    testapp.post("/ui/admin/users", {"name": "dave", "password": PASSWORD, "role": "user",
                                     "csrf_token": csrf(page)}, headers=HTML, status=303)
    assert "dave" in [u["name"] for u in users.list_users(services)]
    audit = soup(testapp.get("/ui/admin/audit", headers=HTML))
    actions = [td.get_text() for td in audit.select("#audit tbody td:nth-of-type(3)")]
    assert actions[0] == "user.add"
    assert "channel.create" in actions


def test_the_channel_page_follows_uploads_and_deletions(services: Any, testapp: TestApp,
                                                        tmp_path: Path) -> None:
    # the listing is kept between requests: every change of the channel's files must show
    channels.create_channel(services, "churn")
    first = packages.upload_file(services, "churn", build_package(PackageSpec("one"), tmp_path))
    names = soup(testapp.get("/ui/channels/churn/", headers=HTML)).select("#packages tbody a")
    assert [a.get_text() for a in names] == ["one"]
    packages.upload_file(services, "churn", build_package(PackageSpec("two"), tmp_path))
    packages.delete_file(services, "churn", first.subdir, first.filename)
    names = soup(testapp.get("/ui/channels/churn/", headers=HTML)).select("#packages tbody a")
    assert [a.get_text() for a in names] == ["two"]

"""Every read route answers through the one read model: (a) a file a real policy hides from
the channel's repodata leaves no trace in any answer, and (b) a channel the caller may not read
answers exactly like an absent one (same status, same body bytes).

The routes are one table (:data:`ROUTES`): a read route added later is one more line there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from repoproxy.domain.reads import ReadModel, parse_dependency
from repoproxy.errors import NotFound
from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

TODAY = datetime.now(UTC).date().isoformat()

LIB = PackageSpec("lib", "1.0", license="MIT", about={"description": "visible readme"},
                  depends=["python >=3.8"])
# the newest lib, hidden by the policy (GPL-3 licence): nothing of it may show anywhere
LIB_HIDDEN = PackageSpec("lib", "9.9.9", license="GPL-3.0-or-later",
                         about={"description": "SECRET README"}, depends=["ghostdep"])
APP = PackageSpec("app", "1.0", license="MIT", depends=["lib >=1.0"])
# a hidden package depending on lib: must not show among lib's dependents
GHOST = PackageSpec("ghost", "1.0", license="GPL-3.0-or-later",
                    depends=["lib >=1"])
SPECS = (LIB, LIB_HIDDEN, APP, GHOST)
HIDDEN_FILE = f"{LIB_HIDDEN.stem}.conda"
#: what the hidden files would leave behind in an answer
TRACES = ("9.9.9", "ghost", "GPL-3.0", "SECRET")


def _reader(services: Any, channel: str) -> dict[str, str]:
    token = make_token(services, f"{channel}-reader", channels=[channel])
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
          services: Any, tmp_path: Path) -> dict[str, Any]:
    """``pub`` (public) and ``secret`` (private) hold the same files; each file is downloaded
    once; a CVE names lib and ghost; then a policy hides the GPL-3 files of both channels."""
    from repoproxy_cve.plugin import import_path

    make_channel("pub")
    make_channel("secret", privacy="private")
    for spec in SPECS:
        path = build_package(spec, pkgdir)
        for ch in ("pub", "secret"):
            upload_raw(testapp, ch, path, admin_headers)
            testapp.get(f"/{ch}/noarch/{path.name}", headers=admin_headers)
    curated = tmp_path / "cves.json"
    curated.write_text(json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2024-1111", "score": 5.0, "status": "active", "description": "lib bug",
         "published": "2024-01-02",
         "affected": [{"name": "lib", "versions": "<100"}, {"name": "ghost", "versions": "<100"}]},
    ]}))
    import_path(services, curated)
    for ch in ("pub", "secret"):
        testapp.post_json("/api/v1/policies", {"name": f"no-gpl3-{ch}", "channel_name": ch,
                                               "license_not": "GPL3"},
                          headers=admin_headers, status=201)
        served = testapp.get(f"/{ch}/noarch/repodata.json",
                             headers=admin_headers).json["packages.conda"]
        # the premise: the policy really hides them from what clients install
        assert sorted(served) == ["app-1.0-0.conda", "lib-1.0-0.conda"]
    return {"admin": admin_headers, "nonmember": _reader(services, "pub"),
            "member": _reader(services, "secret")}


@dataclass(frozen=True)
class Route:
    id: str
    path: str  # "{ch}" stands for the channel
    present: tuple[str, ...] = ()  # what the visible files put there (so the test can fail)
    check: Callable[[Any], None] | None = None  # more about the visible answer (JSON)
    traces: tuple[str, ...] = TRACES
    channel_scoped: bool = True
    #: for routes naming the hidden file itself: the path of a file never uploaded, which
    #: must answer the same (status and body, the file name aside)
    never_uploaded: str | None = None
    #: the answer's status for someone who reads the channel
    status: int = 200


def _eq(key: str, value: Any) -> Callable[[Any], None]:
    def check(body: Any) -> None:
        assert body[key] == value, (key, body[key])
    return check


ART = "/api/channels/{ch}/artifacts/conda"
ROUTES = [
    Route("details", f"{ART}/lib", ("lib-1.0-0.conda",), check=_eq("latest_version", "1.0")),
    Route("details-versions", f"{ART}/lib", check=_eq("versions", ["1.0"])),
    Route("files", f"{ART}/lib/files", ("lib-1.0-0.conda",), check=_eq("total", 1)),
    Route("files-of-hidden-version", f"{ART}/lib/files?version=9.9.9",
          check=_eq("total", 0), traces=("GPL-3.0", "SECRET", "ghost")),
    Route("readme", f"{ART}/lib/readme", ("visible readme",)),
    Route("dependencies", f"{ART}/lib/dependencies", ("python",),
          check=_eq("dependents", [{"name": "app", "versions": ["1.0"]}])),
    Route("dependencies-of-hidden-version", f"{ART}/lib/dependencies?version=9.9.9",
          status=404, traces=("GPL-3.0", "SECRET", "ghost")),
    Route("dependents", f"{ART}/lib/dependents", ("app",),
          check=_eq("dependents", [{"name": "app", "versions": ["1.0"]}])),
    # these name the hidden package or file in the URL, and the 404 echoes it: the twin
    # comparison (the answer to a name never uploaded) is their check
    Route("hidden-package-details", f"{ART}/ghost", status=404, traces=(),
          never_uploaded=f"{ART}/nosuchpkg"),
    Route("list-packages", "/api/channels/{ch}/artifacts", ("lib", "app"),
          check=lambda b: [(p["name"], p["latest_version"], p["file_count"])
                           for p in b["packages"]] == [("app", "1.0", 1), ("lib", "1.0", 1)]),
    Route("list-files", "/api/v1/channels/{ch}/files", ("lib-1.0-0.conda", "app-1.0-0.conda"),
          check=lambda b: len(b["files"]) == 2),
    # pages: the cursor is the last visible file, so it never names a hidden one
    Route("list-files-page", "/api/v1/channels/{ch}/files?limit=1", ("app-1.0-0.conda",),
          check=_eq("next", "noarch/app-1.0-0.conda")),
    Route("list-files-last-page",
          "/api/v1/channels/{ch}/files?limit=1&after=noarch/app-1.0-0.conda",
          ("lib-1.0-0.conda",), check=lambda b: b["next"] is None and len(b["files"]) == 1),
    Route("channel", "/api/v1/channels/{ch}", check=_eq("package_files", {"noarch": 2})),
    Route("search", "/api/v1/search?q=lib", ('"version": "1.0"',), channel_scoped=False,
          check=lambda b: [(r["channel"], r["version"]) for r in b["results"]] in (
              [("pub", "1.0")], [("pub", "1.0"), ("secret", "1.0")])),
    Route("search-hidden-name", "/api/v1/search?q=ghost", channel_scoped=False,
          check=_eq("count", 0), traces=("9.9.9", "GPL-3.0", "SECRET")),
    Route("badge-version", "/api/channels/{ch}/badges/lib/version.svg", (">1.0<",)),
    Route("badge-license", "/api/channels/{ch}/badges/lib/license.svg", (">MIT<",)),
    Route("badge-downloads", "/api/channels/{ch}/badges/lib/downloads.svg", (">1<",)),
    Route("badge-platforms", "/api/channels/{ch}/badges/lib/platforms.svg", (">noarch<",)),
    Route("badge-of-hidden-package", "/api/channels/{ch}/badges/ghost/version.svg",
          status=404, traces=(),
          never_uploaded="/api/channels/{ch}/badges/nosuchpkg/version.svg"),
    Route("sbom-file", "/api/channels/{ch}/sbom/noarch/lib-1.0-0.conda", ("lib",)),
    Route("sbom-of-hidden-file", f"/api/channels/{{ch}}/sbom/noarch/{HIDDEN_FILE}",
          status=404, traces=(),
          never_uploaded="/api/channels/{ch}/sbom/noarch/lib-5.5.5-0.conda"),
    Route("sbom-subdir", "/api/channels/{ch}/sbom/noarch", ("lib", "app")),
    Route("channel-downloads", "/api/channels/{ch}/downloads", ("lib-1.0-0.conda",),
          check=_eq("downloads", 2)),
    Route("report", f"/api/v1/reports/downloads?date_from={TODAY}&date_to={TODAY}",
          ("lib-1.0-0.conda",), channel_scoped=False,
          check=lambda b: {r["file"] for r in b["rows"]} == {"lib-1.0-0.conda",
                                                            "app-1.0-0.conda"}),
    Route("report-csv",
          f"/api/v1/reports/downloads?date_from={TODAY}&date_to={TODAY}&format=csv",
          ("lib-1.0-0.conda",), channel_scoped=False),
    Route("cves", f"{ART}/lib/cves", ("CVE-2024-1111", "noarch/lib-1.0-0.conda"),
          check=lambda b: list(b["files"]) == ["noarch/lib-1.0-0.conda"]),
    Route("cves-of-hidden-package", f"{ART}/ghost/cves", status=404, traces=(),
          never_uploaded=f"{ART}/nosuchpkg/cves"),
]


def _run_check(route: Route, response: Any) -> None:
    if route.check is None:
        return
    outcome = route.check(response.json)
    assert outcome is None or outcome, f"{route.id}: {response.json}"


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_a_policy_hidden_file_leaves_no_trace(route: Route, testapp: Any,
                                              world: dict[str, Any]) -> None:
    path = route.path.format(ch="pub")
    response = testapp.get(path, headers=world["admin"], status=route.status)
    for trace in route.traces:
        assert trace not in response.text, f"{route.id} shows {trace!r}: {response.text[:500]}"
    for marker in route.present:
        assert marker in response.text, f"{route.id} lacks {marker!r}"
    if route.status == 200:
        _run_check(route, response)
    if route.never_uploaded:
        twin = testapp.get(route.never_uploaded.format(ch="pub"), headers=world["admin"],
                           status=route.status)
        # the same answer as for a name never uploaded, that name aside
        (asked, other), = ((a, b) for a, b in zip(route.path.split("/"),
                                                   route.never_uploaded.split("/"), strict=True)
                           if a != b)
        assert response.body == twin.body.replace(other.encode(), asked.encode())


@pytest.mark.parametrize("route", ROUTES, ids=[r.id for r in ROUTES])
def test_a_channel_one_may_not_read_answers_like_an_absent_one(
        route: Route, testapp: Any, world: dict[str, Any]) -> None:
    callers = {"anonymous": {}, "nonmember": world["nonmember"]}
    if route.channel_scoped:
        member = testapp.get(route.path.format(ch="secret"), headers=world["member"],
                             expect_errors=True)
        assert member.status_int == route.status, "the secret channel is served to members"
        for caller, headers in callers.items():
            hidden = testapp.get(route.path.format(ch="secret"), headers=headers,
                                 expect_errors=True)
            absent = testapp.get(route.path.format(ch="nochannel"), headers=headers,
                                 expect_errors=True)
            assert hidden.status_int in (401, 404), caller
            assert (hidden.status, hidden.body, hidden.content_type) == (
                absent.status, absent.body, absent.content_type), caller
            assert hidden.headers.get("WWW-Authenticate") == \
                absent.headers.get("WWW-Authenticate"), caller
        return
    # a cross-channel route: what a caller gets is what it gets once the channel is gone
    before = {c: testapp.get(route.path, headers=h, expect_errors=True)
              for c, h in callers.items()}
    testapp.delete("/api/v1/channels/secret", headers=world["admin"])
    for caller, headers in callers.items():
        after = testapp.get(route.path, headers=headers, expect_errors=True)
        assert b"secret" not in before[caller].body, caller
        assert (before[caller].status, before[caller].body) == (after.status, after.body), caller


# --- the read model itself, without the web --------------------------------------------------
@pytest.mark.parametrize(("raw", "name", "spec", "channel"), [
    ("numpy", "numpy", "", None),
    ("lib >=1.9", "lib", ">=1.9", None),
    ("python 3.11.* *_cpython", "python", "3.11.* *_cpython", None),
    ("conda-forge::numpy", "numpy", "", "conda-forge"),
    ("conda-forge::numpy >=1.2", "numpy", ">=1.2", "conda-forge"),
    ("numpy[version='>=1.2']", "numpy", ">=1.2", None),
    ("numpy[version='>=1.2', build='py*']", "numpy", ">=1.2 py*", None),
    ("conda-forge/linux-64::numpy ==1.2", "numpy", "==1.2", "conda-forge"),
    ("NumPy >=1", "numpy", ">=1", None),
])
def test_dependency_strings_are_parsed_as_conda_parses_them(raw: str, name: str, spec: str,
                                                            channel: str | None) -> None:
    dep = parse_dependency(raw)
    assert (dep.name, dep.spec, dep.channel, dep.raw) == (name, spec, channel, raw)


def test_dependents_found_through_channel_and_bracket_specs(
        testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("deps")
    for spec in (PackageSpec("numpy", "1.26"),
                 PackageSpec("a", depends=["conda-forge::numpy"]),
                 PackageSpec("b", depends=["numpy[version='>=1.2']"]),
                 PackageSpec("c", depends=["numpy-base >=1"])):  # a longer name, not numpy
        upload_raw(testapp, "deps", build_package(spec, pkgdir), admin_headers)
    body = testapp.get("/api/channels/deps/artifacts/conda/numpy/dependents").json
    assert [d["name"] for d in body["dependents"]] == ["a", "b"]
    deps = testapp.get("/api/channels/deps/artifacts/conda/a/dependencies").json
    assert deps["dependencies"] == [{"name": "numpy", "spec": "", "channel": "conda-forge",
                                     "raw": "conda-forge::numpy", "subdirs": ["noarch"]}]


def test_offline_read_model_sees_every_channel_but_no_hidden_file(
        services: Any, world: dict[str, Any]) -> None:
    reads = ReadModel.unrestricted(services)
    assert [c.name for c in reads.channels()] == ["pub", "secret"]
    assert reads.package("secret", "lib").versions == ["1.0"]
    assert HIDDEN_FILE in services.indexer.hidden("secret", "noarch")
    nobody = ReadModel(services, lambda channel: channel.name == "pub")
    assert [c.name for c in nobody.channels()] == ["pub"]
    with pytest.raises(NotFound) as hidden:
        nobody.package("secret", "lib")
    with pytest.raises(NotFound) as absent:
        nobody.package("nochannel", "lib")
    assert str(hidden.value) == str(absent.value) == "channel not found"
    with pytest.raises(NotFound):
        reads.file("pub", "noarch", HIDDEN_FILE)


def test_find_channel_answers_like_get_channel(services: Any, make_channel: Any) -> None:
    catalog = services.catalog()
    assert catalog.find_channel("pub") is None  # an empty table: no row to read at all
    make_channel("pub")
    make_channel("secret", privacy="private")
    for name in ("pub", "secret", "absent", ""):
        assert catalog.find_channel(name) == catalog.get_channel(name), name


def test_a_channel_made_again_under_its_name_never_meets_the_old_listing(
        testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str],
        pkgdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repoproxy.domain import channels
    from repoproxy.domain.channels import remove_channel

    # both channels made within one second: `created` cannot tell them apart
    monkeypatch.setattr(channels, "utcnow", lambda: "2026-12-02T05:00:00+00:00")

    def listed() -> list[str]:  # the channel page lists from the kept listing
        from bs4 import BeautifulSoup

        page = testapp.get("/ui/channels/again/", headers={**admin_headers,
                                                            "Accept": "text/html"})
        table = BeautifulSoup(page.text, "html.parser").find(id="packages")
        return [a.get_text() for a in table.select("tbody td:first-child a")]

    make_channel("again")
    upload_raw(testapp, "again", build_package(PackageSpec("first"), pkgdir), admin_headers)
    assert listed() == ["first"]  # now kept in the listing cache
    before = services.catalog().get_channel("again")
    remove_channel(services, "again")
    make_channel("again")
    upload_raw(testapp, "again", build_package(PackageSpec("second"), pkgdir), admin_headers)
    after = services.catalog().get_channel("again")
    # the same subdir generations and the same `created`: only the incarnation differs
    assert services.catalog().generations("again") == (("noarch", 2),)
    assert after.created == before.created
    assert after.incarnation != before.incarnation
    assert len(after.incarnation) == 16
    assert listed() == ["second"]


def test_kept_listings_stay_within_their_budget_and_match_a_fresh_summary(
        testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str],
        pkgdir: Path) -> None:
    from repoproxy.domain.reads import ListingCache

    cache = services.plugin_state("repoproxy.reads.listings", lambda: ListingCache(budget=5))
    assert isinstance(cache, ListingCache)
    cache._budget = 5  # small enough for three small channels to overflow it
    reads = ReadModel.unrestricted(services)
    for channel, count in (("one", 3), ("two", 2), ("three", 4), ("huge", 6)):
        make_channel(channel)
        for i in range(count):
            upload_raw(testapp, channel, build_package(PackageSpec(f"{channel}{i}"),
                                                       pkgdir / f"{channel}{i}"), admin_headers)
        listed = ReadModel.unrestricted(services).package_summaries(channel)
        assert [p.name for p in listed] == [f"{channel}{i}" for i in range(count)]
        assert cache.size() <= 5
    # "huge" has more names than the budget: summarised, answered, not kept
    assert cache.size() == 4
    # what is kept answers exactly as a fresh summary does
    kept = reads.package_summaries("three")
    cache._kept.clear()
    assert ReadModel.unrestricted(services).package_summaries("three") == kept
    overview = reads.overview("three")
    assert (overview.package_count, overview.file_count) == (4, 4)


def test_the_package_listing_reads_its_facts_in_batches_and_streams_the_same_answer(
        testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from repoproxy.domain import reads

    make_channel("many")
    for i in range(5):
        spec = PackageSpec(f"n{i}", "1.0", license=f"L{i}", about={"summary": f"s{i}"})
        upload_raw(testapp, "many", build_package(spec, pkgdir / str(i)), admin_headers)
    whole = testapp.get("/api/channels/many/artifacts").json
    monkeypatch.setattr(reads, "WALK_BATCH", 2)  # three batches of facts
    batched = testapp.get("/api/channels/many/artifacts")
    assert batched.content_type == "application/json"
    assert batched.json == whole
    assert [(p["name"], p["license"], p["summary"]) for p in whole["packages"]] == [
        (f"n{i}", f"L{i}", f"s{i}") for i in range(5)]

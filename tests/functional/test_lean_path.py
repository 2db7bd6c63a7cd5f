"""The lean path (web/lean.py) answers exactly what the Pyramid application answers: status,
headers in order, body, access log line and metrics, for a matrix of conda requests (public,
authenticated, private, absent channels and a subchannel; indexes, shards, packages, hidden
and missing files; anonymous, good, foreign, malformed, expired and revoked tokens in the
header, in the path and in the query; HEAD, Range, validators; odd paths); and Pyramid is not
used for the requests it answers."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from repoproxy.domain.tokens import parse_id, revoke_token
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction
from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.visibility import shard_digests
from repoproxy.web import fastpath
from repoproxy.web.app import make_app
from repoproxy.web.lean import LeanApp


@pytest.fixture
def settings(root: Path) -> dict[str, Any]:
    # the access log on: its lines are compared too
    return {"repoproxy.root": str(root), "repoproxy.log_requests": "true"}


@pytest.fixture
def world(testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str],
          pkgdir: Path) -> dict[str, Any]:
    make_channel("pub")
    make_channel("priv", privacy="private")
    make_channel("auth", privacy="authenticated")
    testapp.post_json("/api/v1/channels/pub/subchannels", {"name": "dev"},
                      headers=admin_headers)
    pkg = build_package(PackageSpec("leanpkg", "1.0"), pkgdir)
    for channel in ("pub", "priv", "auth", "pub/dev"):
        upload_raw(testapp, channel, pkg, admin_headers)
    shard = shard_digests(testapp.get("/pub/noarch/repodata_shards.msgpack.zst").body)[
        "leanpkg"]
    hidden = build_package(PackageSpec("hiddenpkg", "1.0"), pkgdir)
    upload_raw(testapp, "pub", hidden, admin_headers)
    (services.store.subdir_dir("pub", "noarch") / ".hidden.json").write_text(
        f'["{hidden.name}"]')
    first = testapp.get("/pub/noarch/repodata.json")
    return {"pkg": pkg.name, "hidden": hidden.name, "shard": shard,
            "etag": first.headers["ETag"], "last_modified": first.headers["Last-Modified"],
            "read": make_token(services, "reader", channels=["priv"]),
            "other": make_token(services, "other", channels=["pub"]),
            "admin": admin_headers["Authorization"].split()[1]}


def matrix(w: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    files = ["noarch/repodata.json", "noarch/repodata.json.zst",
             "noarch/repodata_shards.msgpack.zst", f"noarch/shards/{w['shard']}.msgpack.zst",
             "noarch/run_exports.json", f"noarch/{w['pkg']}", f"noarch/{w['hidden']}",
             "noarch/missing-1.0-0.conda", "linux-64/repodata.json"]
    odd = ["nosubdir/repodata.json", f"noarch/shards/{'0' * 64}.msgpack.zst",
           f"noarch/shards/{'A' * 64}.msgpack.zst", "noarch/shards/short.msgpack.zst",
           "channeldata.json", "noarch/repodata.json/", "noarch/", "noarch/..",
           "noarch/../noarch/repodata.json", "noarch/repodata%2Ejson", "noarch/%72epodata.json",
           "noarch//repodata.json", "noarch/repodata.json.bz2", "noarch/r%C3%A9podata.json",
           "noarch/%FFrepodata.json", "noarch/repodata.json%00"]
    variants: list[dict[str, str]] = [
        {}, {"If-None-Match": w["etag"]}, {"If-None-Match": '"other"'},
        {"If-None-Match": f'W/{w["etag"]}'}, {"If-None-Match": "*"},
        {"If-None-Match": w["etag"], "If-Modified-Since": w["last_modified"]},
        {"If-Modified-Since": w["last_modified"]}, {"Range": "bytes=0-9"},
        {"Range": "bytes=999999-"}, {"Accept-Encoding": "gzip"},
        {"Authorization": f"Bearer {w['read']}"}, {"Authorization": f"Bearer {w['other']}"},
        {"Authorization": f"Bearer {w['admin']}"}, {"Authorization": "Bearer nonsense"},
        {"Authorization": "Bearer rp-unknown-token"}, {"Authorization": "Bearer "},
        {"X-API-Key": w["read"]}, {"Authorization": f"Basic {w['read']}"},
        {"Cookie": "other=1"}, {"X-Forwarded-For": "10.1.2.3"},
        # how a bearer header is read: scheme case, spaces, another scheme, X-API-Key beside
        {"Authorization": f"bEARER   {w['read']}  "}, {"Authorization": f"Token {w['read']}"},
        {"Authorization": f"Bearer{w['read']}"},
        {"Authorization": f"Bearer {w['other']}", "X-API-Key": w["read"]},
        {"Authorization": "", "X-API-Key": w["read"]},
    ]
    out = []
    for channel in ("pub", "priv", "auth", "absent", "pub/dev", "api", "t"):
        for name in files + odd:
            for headers in variants if name in files and channel not in ("api", "t") else (
                    variants[:2] + variants[10:12]):
                out.append(("GET", f"/{channel}/{name}", headers))
            out.append(("HEAD", f"/{channel}/{name}", {}))
            out.append(("HEAD", f"/{channel}/{name}", {"If-None-Match": w["etag"]}))
            out.append(("POST", f"/{channel}/{name}", {}))
            out.append(("GET", f"/t/{w['read']}/{channel}/{name}", {}))
            out.append(("GET", f"/t/{w['other']}/{channel}/{name}",
                        {"Authorization": f"Bearer {w['read']}"}))
            out.append(("GET", f"/t/nonsense!/{channel}/{name}", {}))
            out.append(("GET", f"/{channel}/{name}?token={w['read']}", {}))
            out.append(("GET", f"/{channel}/{name}?", {}))
    out += [("GET", "/t/", {}), ("GET", "/t", {}), ("GET", "/", {}), ("GET", "//", {})]
    return out


def answer(app: TestApp, method: str, url: str, headers: dict[str, str]) -> tuple[Any, ...]:
    r = app.request(url, method=method, headers=headers, expect_errors=True)
    return r.status, r.headerlist, hashlib.sha256(r.body).hexdigest()


def metrics() -> dict[tuple[str, ...], float]:
    """The request counters' values by route and status."""
    from repoproxy_metrics.metrics import REQUESTS

    return {(s.name, *sorted(s.labels.items())): s.value
            for m in REQUESTS.collect() for s in m.samples if s.name.endswith("_total")}


def downloads(services: Any) -> dict[tuple[str, ...], int]:
    """The stats plugin's download counts not flushed yet, by day, file and identity."""
    from repoproxy_stats.counter import buffer_for

    return dict(buffer_for(services)._counts)


class Pyramid:
    """A WSGI wrapper counting what reaches the Pyramid application."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.seen.append(environ["PATH_INFO"])
        return self.app(environ, start_response)


def test_lean_path_answers_what_pyramid_answers(services: Any, app: Any, world: dict[str, Any],
                                                caplog: Any) -> None:
    assert isinstance(app, LeanApp)
    assert app.enabled
    assert app.tokens
    plain = TestApp(fastpath.uninstall(make_app(services).router))
    pyramid = app.router = Pyramid(app.router)
    lean = TestApp(app)
    statuses = set()
    caplog.set_level(logging.INFO, logger="repoproxy.access")
    lean_lines, plain_lines = [], []
    counted = 0
    for method, url, headers in matrix(world):
        before, before_downloads = metrics(), downloads(services)
        caplog.clear()
        got = answer(lean, method, url, headers)
        lean_lines = [_line(r) for r in caplog.records if r.name == "repoproxy.access"]
        middle, middle_downloads = metrics(), downloads(services)
        caplog.clear()
        expected = answer(plain, method, url, headers)
        plain_lines = [_line(r) for r in caplog.records if r.name == "repoproxy.access"]
        assert got == expected, (method, url, headers)
        assert lean_lines == plain_lines, (method, url, headers)
        # the same series moved by one each; the same download counted for the same caller
        assert _moved(before, middle) == _moved(middle, metrics()), (method, url, headers)
        lean_counted = _moved(before_downloads, middle_downloads)
        assert lean_counted == _moved(middle_downloads, downloads(services)), (
            method, url, headers)
        counted += bool(lean_counted)
        statuses.add(got[0].split()[0])
    assert counted > 20  # downloads by anonymous callers and by tokens' users
    # the lean path answered a good part of it; the matrix reaches every kind of answer
    requests = matrix(world)
    assert len(requests) - len(pyramid.seen) > 150, (len(requests), len(pyramid.seen))
    assert statuses >= {"200", "206", "304", "400", "401", "404", "416"}, statuses


def _line(record: logging.LogRecord) -> str:
    # the duration aside, every field of the access line
    args = list(record.args or ())
    del args[4]
    return record.msg % (*args[:4], 0.0, *args[4:])


def _moved(before: dict[tuple[str, ...], float], after: dict[tuple[str, ...], float]
           ) -> dict[tuple[str, ...], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def test_lean_path_answers_the_common_requests_without_pyramid(app: Any, world: dict[str, Any],
                                                               monkeypatch: Any) -> None:
    pyramid = Pyramid(app.router)
    monkeypatch.setattr(app, "router", pyramid)
    test = TestApp(app)
    read = {"Authorization": f"Bearer {world['read']}"}
    test.get("/priv/noarch/repodata.json", headers=read)  # the token verified by Pyramid once
    pyramid.seen.clear()
    test.get("/pub/noarch/repodata.json", headers={"If-None-Match": world["etag"]}, status=304)
    test.get("/pub/noarch/repodata.json.zst")
    test.head("/pub/noarch/repodata.json.zst")
    test.get("/pub/noarch/repodata.json", headers={"Accept-Encoding": "gzip"})
    test.get("/pub/dev/noarch/repodata_shards.msgpack.zst")
    test.get(f"/pub/noarch/shards/{world['shard']}.msgpack.zst")
    test.get(f"/t/{world['read']}/priv/noarch/repodata.json.zst")
    test.get("/priv/noarch/repodata_shards.msgpack.zst", headers=read)
    test.get("/priv/noarch/repodata_shards.msgpack.zst", headers={"X-API-Key": world["read"]})
    test.get("/auth/noarch/repodata.json", headers=read)
    # package files: counted downloads included (test_downloads_are_counted_as_by_pyramid)
    test.get(f"/pub/noarch/{world['pkg']}")
    test.head(f"/pub/noarch/{world['pkg']}")
    test.get(f"/priv/noarch/{world['pkg']}", headers=read)
    test.get(f"/pub/noarch/{world['pkg']}", headers={"If-None-Match": test.get(
        f"/pub/noarch/{world['pkg']}").headers["ETag"]}, status=304)
    assert pyramid.seen == []
    # refusals, absent channels and files, hidden packages, other routes: Pyramid
    test.get("/priv/noarch/repodata.json", status=401)
    test.get("/absent/noarch/repodata.json", status=401)
    test.get("/pub/linux-64/repodata.json", status=404)
    test.get(f"/pub/noarch/{world['hidden']}", status=404)
    test.get("/pub/noarch/missing-1.0-0.conda", status=404)
    test.get(f"/pub/noarch/{world['pkg']}", headers={"Range": "bytes=0-1"}, status=206)
    test.get("/pub/channeldata.json")
    test.get("/pub/noarch/repodata.json", headers={"Range": "bytes=0-1"}, status=206)
    assert pyramid.seen == ["/priv/noarch/repodata.json", "/absent/noarch/repodata.json",
                            "/pub/linux-64/repodata.json", f"/pub/noarch/{world['hidden']}",
                            "/pub/noarch/missing-1.0-0.conda", f"/pub/noarch/{world['pkg']}",
                            "/pub/channeldata.json", "/pub/noarch/repodata.json"]


def test_an_expired_or_revoked_token_is_refused_at_once(services: Any, app: Any,
                                                        world: dict[str, Any]) -> None:
    """Both answered by the lean path while good, then refused as Pyramid refuses them."""
    test = TestApp(app)
    plain = TestApp(fastpath.uninstall(make_app(services).router))
    soon = make_token(services, "soon", channels=["priv"])
    gone = make_token(services, "gone", channels=["priv"])
    db = services.db()
    expires = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    with write_transaction(db):
        Catalog(db).update_token(parse_id(soon), expires=expires)
    url = "/priv/noarch/repodata.json"
    for token in (soon, gone):  # verified, then answered by the lean path
        for _ in range(2):
            test.get(url, headers={"Authorization": f"Bearer {token}"})
    revoke_token(services, parse_id(gone))
    bearer = {"Authorization": f"Bearer {gone}"}
    assert answer(test, "GET", url, bearer)[0] == "401 Unauthorized"
    assert answer(test, "GET", url, bearer) == answer(plain, "GET", url, bearer)
    time.sleep(max(0.0, datetime.fromisoformat(expires).timestamp() - time.time()) + 0.05)
    bearer = {"Authorization": f"Bearer {soon}"}
    assert answer(test, "GET", url, bearer)[0] == "401 Unauthorized"
    assert answer(test, "GET", url, bearer) == answer(plain, "GET", url, bearer)


def test_a_channel_made_private_is_refused_on_the_next_request(testapp: Any, app: Any,
                                                               world: dict[str, Any],
                                                               admin_headers: dict[str, str]
                                                               ) -> None:
    testapp.get("/pub/noarch/repodata.json")
    testapp.patch_json("/api/v1/channels/pub", {"privacy": "private"}, headers=admin_headers)
    testapp.get("/pub/noarch/repodata.json", status=401)
    testapp.get("/pub/noarch/repodata.json", headers=admin_headers)


def test_a_plugin_on_the_access_decision_turns_the_lean_path_off(app: Any,
                                                                 world: dict[str, Any],
                                                                 services: Any) -> None:
    from pyramid.authorization import ALL_PERMISSIONS, Deny, Everyone

    from repoproxy import hookimpl

    class Embargo:
        @hookimpl
        def repoproxy_acl_entries(self, request: Any, context: Any) -> Any:
            return [(Deny, Everyone, ALL_PERMISSIONS)]

    test = TestApp(app)
    test.get("/pub/noarch/repodata.json")
    services.pm.register(Embargo(), name="repoproxy_embargo")
    try:
        test.get("/pub/noarch/repodata.json", status=401)
        assert not app.enabled
    finally:
        services.pm.unregister(name="repoproxy_embargo")
    test.get("/pub/noarch/repodata.json")
    assert app.enabled


def test_hook_channel_file_claims(app: Any, world: dict[str, Any], services: Any,
                                  monkeypatch: Any) -> None:
    from pyramid.response import Response

    from repoproxy import hookimpl

    class Legacy:
        """Answers the files of channel pub itself, and says so."""

        @hookimpl
        def repoproxy_channel_file(self, request: Any, channel: Any, subdir: str,
                                   filename: str) -> Any:
            if channel.name != "pub":
                return None
            return Response(f"{channel.name}|{subdir}|{filename}", content_type="text/plain")

        @hookimpl
        def repoproxy_channel_file_claims(self, services: Any) -> Any:
            return lambda channel: channel == "pub"

    pyramid = Pyramid(app.router)
    monkeypatch.setattr(app, "router", pyramid)
    test = TestApp(app)
    services.pm.register(Legacy(), name="repoproxy_legacy")
    try:
        assert test.get("/pub/noarch/repodata.json").text == "pub|noarch|repodata.json"
        # a channel it does not claim is still answered by the lean path
        test.get("/priv/noarch/repodata.json.zst",
                 headers={"Authorization": f"Bearer {world['read']}"})  # verified once
        pyramid.seen.clear()
        test.get("/priv/noarch/repodata.json.zst",
                 headers={"Authorization": f"Bearer {world['read']}"})
        assert app.enabled
        assert pyramid.seen == []
        assert test.get("/pub/noarch/repodata.json").text == "pub|noarch|repodata.json"
        assert test.get(f"/pub/noarch/{world['pkg']}").text == f"pub|noarch|{world['pkg']}"
        assert pyramid.seen == ["/pub/noarch/repodata.json", f"/pub/noarch/{world['pkg']}"]
    finally:
        services.pm.unregister(name="repoproxy_legacy")


def test_hook_channel_file_lean(app: Any, world: dict[str, Any], services: Any, tmp_path: Path,
                                monkeypatch: Any) -> None:
    from repoproxy import hookimpl
    from repoproxy.models import LeanFile
    from repoproxy.web.files import file_response

    elsewhere = tmp_path / "legacy"
    elsewhere.mkdir()
    (elsewhere / "repodata.json").write_text('{"packages": {}}')
    answered: list[str] = []

    class Legacy:
        """Answers channel pub's repodata.json from another tree, with an ETag of its own,
        and lets the lean path answer it; its other files are its own answers."""

        @hookimpl
        def repoproxy_channel_file(self, request: Any, channel: Any, subdir: str,
                                   filename: str) -> Any:
            if channel.name != "pub" or filename != "repodata.json":
                return None
            return file_response(request, str(elsewhere / filename), channel,
                                 immutable=False, etag="legacy-tag")

        @hookimpl
        def repoproxy_channel_file_claims(self, services: Any) -> Any:
            return lambda channel: channel == "pub"

        @hookimpl
        def repoproxy_channel_file_lean(self, services: Any) -> Any:
            def lean(channel: str, subdir: str, filename: str) -> LeanFile | None:
                if filename != "repodata.json":
                    return None
                return LeanFile(str(elsewhere / filename), "legacy-tag",
                                lambda: answered.append(f"{channel}/{subdir}/{filename}"))
            return lean

    class Other:
        """Claims pub too, without lean answers."""

        @hookimpl
        def repoproxy_channel_file_claims(self, services: Any) -> Any:
            return lambda channel: channel == "pub"

    pyramid = Pyramid(app.router)
    monkeypatch.setattr(app, "router", pyramid)
    test = TestApp(app)
    plain = TestApp(fastpath.uninstall(make_app(services).router))
    services.pm.register(Legacy(), name="repoproxy_legacy")
    try:
        for headers in ({}, {"If-None-Match": '"legacy-tag"'}, {"Accept-Encoding": "gzip"}):
            for method in ("GET", "HEAD"):
                got = answer(test, method, "/pub/noarch/repodata.json", headers)
                assert got == answer(plain, method, "/pub/noarch/repodata.json", headers)
        assert got[0] == "200 OK"
        assert ("ETag", '"legacy-tag"') in test.get("/pub/noarch/repodata.json").headerlist
        assert pyramid.seen == []
        assert answered == ["pub/noarch/repodata.json"] * 7  # the plain app's: not counted
        # None: the plugin's own answer, through the application
        test.get("/pub/noarch/repodata.json.zst")
        assert pyramid.seen == ["/pub/noarch/repodata.json.zst"]
        # two plugins claim the channel: the application decides which one answers
        services.pm.register(Other(), name="repoproxy_other")
        pyramid.seen.clear()
        test.get("/pub/noarch/repodata.json")
        assert pyramid.seen == ["/pub/noarch/repodata.json"]
        assert len(answered) == 7
    finally:
        services.pm.unregister(name="repoproxy_legacy")
        if services.pm.has_plugin("repoproxy_other"):
            services.pm.unregister(name="repoproxy_other")


def test_hook_request_observers(services: Any, world: dict[str, Any]) -> None:
    from repoproxy import hookimpl

    seen: list[tuple[str, int]] = []

    class Observer:
        @hookimpl
        def repoproxy_request_observers(self, services: Any) -> Any:
            return [lambda route, status, seconds: seen.append((route, status))]

    class Broken:
        @hookimpl
        def repoproxy_request_observers(self) -> Any:
            def observe(route: str, status: int, seconds: float) -> None:
                raise RuntimeError("broken observer")

            return [observe]

    services.pm.register(Observer(), name="repoproxy_observer")
    services.pm.register(Broken(), name="repoproxy_broken_observer")
    try:
        app = make_app(services)  # observers are collected when the app is built
        test = TestApp(app)
        test.get("/pub/noarch/repodata.json.zst")  # the lean path
        test.get(f"/pub/noarch/{world['pkg']}")  # Pyramid's
        test.get("/priv/noarch/repodata.json", status=401)
        test.get("/nowhere", status=404)
    finally:
        services.pm.unregister(name="repoproxy_observer")
        services.pm.unregister(name="repoproxy_broken_observer")
    assert seen == [("channel.file", 200), ("channel.file", 200), ("channel.file", 401),
                    ("none", 404)]


def test_role_bindings_decide_as_in_pyramid(tmp_path: Path) -> None:
    """``unauthenticated_role_bindings`` and ``authenticated_role_bindings`` grant what they
    grant through Pyramid: the lean path decides with the same identities."""
    from repoproxy.domain.channels import create_channel
    from repoproxy.domain.core import load_core

    core = load_core({"repoproxy.root": str(tmp_path / "root"),
                      "repoproxy.log_requests": "false",
                      "repoproxy.auth.unauthenticated_role_bindings": "open*=read",
                      "repoproxy.auth.authenticated_role_bindings": "team=read"}, {})
    try:
        for name in ("open-a", "team", "closed"):
            create_channel(core, name, privacy="private")
        token = make_token(core, "nobody", channels=["closed"])
        lean_app = make_app(core)
        pyramid = lean_app.router = Pyramid(lean_app.router)
        lean = TestApp(lean_app)
        plain = TestApp(fastpath.uninstall(make_app(core).router))
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            lean.get("/closed/noarch/repodata.json", headers=headers, expect_errors=True)
            pyramid.seen.clear()
            got = {}
            for channel in ("open-a", "team", "closed"):
                url = f"/{channel}/noarch/repodata.json"
                got[channel] = answer(lean, "GET", url, headers)
                assert got[channel] == answer(plain, "GET", url, headers)
            granted = {c for c, a in got.items() if a[0] == "200 OK"}
            # what a binding grants is answered by the lean path, the rest by Pyramid
            assert granted == ({"open-a"} if not headers else {"team", "closed"})
            assert set(pyramid.seen) == {f"/{c}/noarch/repodata.json"
                                         for c in {"open-a", "team", "closed"} - granted}
    finally:
        core.close()


def test_package_answers_behind_the_front_are_pyramids(root: Path, world: dict[str, Any]
                                                       ) -> None:
    """With ``repoproxy.accel_redirect`` set, a package's X-Accel-Redirect answer (or its
    refusal) is the same from the lean path as from Pyramid, and is counted the same."""
    from repoproxy.domain.core import load_core

    # a server of the same root behind the front
    services = load_core({"repoproxy.root": str(root), "repoproxy.log_requests": "true",
                          "repoproxy.accel_redirect": "/-/accel/"})
    app = make_app(services)
    assert isinstance(app, LeanApp)
    assert app.packages
    pyramid = app.router = Pyramid(app.router)
    lean = TestApp(app)
    plain = TestApp(fastpath.uninstall(make_app(services).router))
    read = {"Authorization": f"Bearer {world['read']}"}
    lean.get("/priv/noarch/repodata.json", headers=read)  # the token verified once
    pyramid.seen.clear()
    for method, url, headers in [
        ("GET", f"/pub/noarch/{world['pkg']}", {}), ("HEAD", f"/pub/noarch/{world['pkg']}", {}),
        ("GET", f"/pub/noarch/{world['pkg']}", {"Range": "bytes=0-9"}),
        ("GET", f"/pub/noarch/{world['pkg']}", {"If-None-Match": world["etag"]}),
        ("GET", f"/priv/noarch/{world['pkg']}", read),
        ("GET", f"/t/{world['read']}/priv/noarch/{world['pkg']}", {}),
        ("GET", f"/pub/dev/noarch/{world['pkg']}", {}),
        ("GET", f"/priv/noarch/{world['pkg']}", {}),
        ("GET", f"/pub/noarch/{world['hidden']}", {}),
        ("GET", "/pub/noarch/missing-1.0-0.conda", {}),
    ]:
        before = downloads(services)
        got = answer(lean, method, url, headers)
        middle = downloads(services)
        assert got == answer(plain, method, url, headers), (method, url, headers)
        assert _moved(before, middle) == _moved(middle, downloads(services)), (method, url)
    first = lean.get(f"/pub/noarch/{world['pkg']}")
    assert first.headers["X-Accel-Redirect"] == f"/-/accel/pub/noarch/{world['pkg']}"
    assert first.body == b""
    # the refusals and the files the view must name went to Pyramid, nothing else
    assert pyramid.seen == [f"/priv/noarch/{world['pkg']}", f"/pub/noarch/{world['hidden']}",
                            "/pub/noarch/missing-1.0-0.conda"]


def test_another_download_observer_gets_pyramids_requests(app: Any, world: dict[str, Any],
                                                          services: Any,
                                                          monkeypatch: Any) -> None:
    """The lean path answers package files only while every download observer is one it
    knows: another one may read anything of the request, so it gets the application's."""
    from repoproxy import hookimpl

    seen: list[Any] = []

    class Observer:
        @hookimpl
        def repoproxy_file_served(self, request: Any, channel: Any, subdir: str,
                                  filename: str) -> None:
            seen.append((request.matchdict["filename"], request.identity.name))

    pyramid = Pyramid(app.router)
    monkeypatch.setattr(app, "router", pyramid)
    test = TestApp(app)
    services.pm.register(Observer(), name="repoproxy_observer")
    try:
        test.get(f"/pub/noarch/{world['pkg']}")
        assert not app.packages
        assert app.enabled  # index files are still answered here
        test.get("/pub/noarch/repodata.json.zst")
        assert pyramid.seen == [f"/pub/noarch/{world['pkg']}"]
        assert seen == [(world["pkg"], "anonymous")]
    finally:
        services.pm.unregister(name="repoproxy_observer")
    pyramid.seen.clear()
    test.get(f"/pub/noarch/{world['pkg']}")
    assert app.packages
    assert pyramid.seen == []

"""The fast path (web/fastpath.py) answers exactly what Pyramid's router answers: status,
headers and body, for a matrix of conda file requests (granted, refused, absent, hidden,
conditional, ranged, HEAD, tokens in the header and in the path), and the router is not used
for the ones it answers."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.visibility import shard_digests
from repoproxy.web import fastpath
from repoproxy.web.app import make_app


@pytest.fixture
def world(testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str],
          pkgdir: Path) -> dict[str, Any]:
    make_channel("pub")
    make_channel("priv", privacy="private")
    pkg = build_package(PackageSpec("fastpkg", "1.0"), pkgdir)
    for channel in ("pub", "priv"):
        upload_raw(testapp, channel, pkg, admin_headers)
    shard = shard_digests(testapp.get("/pub/noarch/repodata_shards.msgpack.zst").body)[
        "fastpkg"]
    # a policy-hidden file: the hidden list the indexer keeps beside the subdir's files
    hidden = build_package(PackageSpec("hiddenpkg", "1.0"), pkgdir)
    upload_raw(testapp, "pub", hidden, admin_headers)
    (services.store.subdir_dir("pub", "noarch") / ".hidden.json").write_text(
        f'["{hidden.name}"]')
    etag = testapp.get("/pub/noarch/repodata.json").headers["ETag"]
    last_modified = testapp.get("/pub/noarch/repodata.json").headers["Last-Modified"]
    return {"pkg": pkg.name, "hidden": hidden.name, "shard": shard, "etag": etag,
            "last_modified": last_modified,
            "read": make_token(services, "reader", channels=["priv"]),
            "other": make_token(services, "other", channels=["pub"])}


def requests(w: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    files = ["noarch/repodata.json", "noarch/repodata.json.zst",
             "noarch/repodata_shards.msgpack.zst", f"noarch/shards/{w['shard']}.msgpack.zst",
             f"noarch/{w['pkg']}", f"noarch/{w['hidden']}", "noarch/missing-1.0-0.conda",
             "noarch/repodata.json.bz2", "linux-64/repodata.json", "nosubdir/repodata.json",
             f"noarch/shards/{'0' * 64}.msgpack.zst", "noarch/shards/short.msgpack.zst",
             "channeldata.json"]
    variants: list[dict[str, str]] = [
        {}, {"If-None-Match": w["etag"]}, {"If-None-Match": '"other"'},
        {"If-Modified-Since": w["last_modified"]}, {"Range": "bytes=0-9"},
        {"Range": "bytes=999999-"}, {"Accept-Encoding": "gzip"},
        {"Authorization": f"Bearer {w['read']}"}, {"Authorization": f"Bearer {w['other']}"},
        {"Authorization": "Bearer nonsense"}, {"X-API-Key": w["read"]},
    ]
    out = []
    for channel in ("pub", "priv", "absent"):
        for name in files:
            for headers in variants:
                out.append(("GET", f"/{channel}/{name}", headers))
            out.append(("HEAD", f"/{channel}/{name}", {}))
            out.append(("GET", f"/t/{w['read']}/{channel}/{name}", {}))
            out.append(("GET", f"/{channel}/{name}?token={w['read']}", {}))
    return out


def answer(app: TestApp, method: str, url: str, headers: dict[str, str]) -> tuple[Any, ...]:
    r = app.request(url, method=method, headers=headers, expect_errors=True)
    return r.status, sorted(r.headerlist), hashlib.sha256(r.body).hexdigest()


def test_fast_path_answers_what_the_router_answers(services: Any, app: Any,
                                                   world: dict[str, Any]) -> None:
    assert app.router.fast_handler is not None
    assert app.router.fast_handler.enabled
    plain = TestApp(fastpath.uninstall(make_app(services).router))
    fast = TestApp(app.router)
    statuses = set()
    for method, url, headers in requests(world):
        got = answer(fast, method, url, headers)
        assert got == answer(plain, method, url, headers), (method, url, headers)
        statuses.add(got[0].split()[0])
    # the matrix reaches every kind of answer of these routes
    assert statuses >= {"200", "206", "304", "401", "404", "416"}, statuses


def test_fast_path_skips_the_router_for_what_it_answers(app: Any, world: dict[str, Any],
                                                        monkeypatch: Any) -> None:
    routed: list[str] = []
    orig = app.router.fast_handler.router_handler

    def spy(request: Any) -> Any:
        routed.append(request.path_info)
        return orig(request)

    monkeypatch.setattr(app.router.fast_handler, "router_handler", spy)
    test = TestApp(app.router)
    token = {"Authorization": f"Bearer {world['read']}"}
    test.get("/pub/noarch/repodata.json", headers={"If-None-Match": world["etag"]}, status=304)
    test.get(f"/pub/noarch/{world['pkg']}")
    test.get(f"/t/{world['read']}/priv/noarch/repodata.json.zst")
    test.get("/priv/noarch/repodata_shards.msgpack.zst", headers=token)
    test.get(f"/pub/noarch/shards/{world['shard']}.msgpack.zst")
    assert routed == []
    # a granted view's NotFound (a hidden file) goes to the exception view, not the router
    test.get(f"/pub/noarch/{world['hidden']}", status=404)
    test.get("/pub/noarch/missing-1.0-0.conda", status=404)
    assert routed == []
    # refusals, absent channels and other routes go to the router
    test.get("/priv/noarch/repodata.json", status=401)
    test.get("/absent/noarch/repodata.json", status=401)  # as a private channel
    test.get("/pub/channeldata.json")
    assert routed == ["/priv/noarch/repodata.json", "/absent/noarch/repodata.json",
                      "/pub/channeldata.json"]


def test_fast_path_counts_downloads_and_metrics_by_route(app: Any, world: dict[str, Any]
                                                         ) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("repoproxy_downloads_total", channel="pub")
    requests_before = value("repoproxy_http_requests_total", route="channel.file",
                            status="200")
    TestApp(app).get(f"/pub/noarch/{world['pkg']}")
    assert value("repoproxy_downloads_total", channel="pub") == before + 1
    assert value("repoproxy_http_requests_total", route="channel.file",
                 status="200") == requests_before + 1


def test_a_plugin_view_on_a_conda_route_turns_the_fast_path_off(services: Any) -> None:
    from pyramid.config import Configurator

    from repoproxy.domain.permissions import Permissions

    config = Configurator(settings=dict(services.settings))
    config.add_route("channel.root", "/{channel}/")
    config.add_route("channel.shard", "/{channel}/{subdir}/shards/{filename}")
    config.add_route("channel.file", "/{channel}/{subdir}/{filename}")
    config.add_view(lambda request: None, route_name="channel.file", request_method="GET",
                    permission=Permissions.CHANNEL_READ)
    config.commit()
    assert fastpath.routing_plan(config.registry) is None


def test_a_subscriber_to_routing_events_turns_the_fast_path_off(services: Any) -> None:
    from pyramid.config import Configurator
    from pyramid.events import ContextFound, NewResponse

    from repoproxy.domain.permissions import Permissions
    from repoproxy.web.views.channel import channel_file, channel_shard

    def configured(*events: Any) -> Any:
        config = Configurator(settings=dict(services.settings))
        config.add_route("channel.root", "/{channel}/")
        config.add_route("channel.shard", "/{channel}/{subdir}/shards/{filename}")
        config.add_route("channel.file", "/{channel}/{subdir}/{filename}")
        for route, view in (("channel.file", channel_file), ("channel.shard", channel_shard)):
            config.add_view(view, route_name=route, request_method=("GET", "HEAD"),
                            permission=Permissions.CHANNEL_READ)
        for event in events:
            config.add_subscriber(lambda e: None, event)
        config.commit()
        return config.registry

    assert fastpath.routing_plan(configured()) is not None
    assert fastpath.routing_plan(configured(NewResponse)) is not None
    assert fastpath.routing_plan(configured(ContextFound)) is None


def test_credentials_are_checked_once_when_the_router_answers(app: Any, world: dict[str, Any],
                                                              monkeypatch: Any) -> None:
    """A refused login on a fast route is hashed and counted once (the router's answer reuses
    the fast attempt's verdict)."""
    import base64

    from repoproxy.web import security

    calls: list[str] = []
    orig = security.identify

    def counting(request: Any) -> Any:
        calls.append(request.path_info)
        return orig(request)

    monkeypatch.setattr(security, "identify", counting)
    basic = base64.b64encode(b"nobody:wrong-password").decode()
    TestApp(app).get("/priv/noarch/repodata.json", headers={"Authorization": f"Basic {basic}"},
                     status=401)
    assert calls == ["/priv/noarch/repodata.json"]

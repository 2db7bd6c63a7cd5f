"""repoproxy_metrics through the WSGI app: series names and labels, values after uploads,
downloads and 401s, access rules, multiprocess aggregation, and no new series from 404s."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


def samples(testapp: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = testapp.get("/-/metrics", extra_environ=LOOPBACK).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(series: dict[Any, float], name: str, **labels: str) -> float:
    return series.get((name, tuple(sorted(labels.items()))), 0.0)


def test_uploads_downloads_builds_and_requests_are_counted(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, pkgdir: Path) -> None:
    make_channel("metr")
    before = samples(testapp)
    path = build_package(PackageSpec("a", "1.0"), pkgdir, "conda")
    upload_raw(testapp, "metr", path, admin_headers)
    testapp.get(f"/metr/noarch/{path.name}")
    testapp.get(f"/metr/noarch/{path.name}")
    after = samples(testapp)
    assert value(after, "repoproxy_uploads_total", channel="metr") - \
        value(before, "repoproxy_uploads_total", channel="metr") == 1
    assert value(after, "repoproxy_downloads_total", channel="metr") - \
        value(before, "repoproxy_downloads_total", channel="metr") == 2
    assert value(after, "repoproxy_index_builds_total", channel="metr") > \
        value(before, "repoproxy_index_builds_total", channel="metr")
    routes = {dict(k[1]).get("route") for k in after if k[0] == "repoproxy_http_requests_total"}
    assert "metrics.scrape" in routes
    # request series carry route names, never raw paths
    assert not any(r and "/" in r for r in routes)
    assert any(k[0] == "repoproxy_http_request_duration_seconds_bucket"
               and dict(k[1]).get("status") == "200" for k in after)


def test_401_counts_as_auth_failure_by_route(testapp: Any, make_channel: Any,
                                             pkgdir: Path) -> None:
    make_channel("locked")
    before = samples(testapp)
    path = build_package(PackageSpec("b", "1.0"), pkgdir, "conda")
    upload_raw(testapp, "locked", path, {}, status=401)
    after = samples(testapp)
    route_labels = {dict(k[1])["route"] for k, v in after.items()
                    if k[0] == "repoproxy_auth_failures_total"
                    and v > value(before, k[0], **dict(k[1]))}
    assert route_labels == {"api.upload"}


def test_uploads_refused_before_their_body_are_counted(app: Any, testapp: Any,
                                                       make_channel: Any) -> None:
    """The server's early check (web/early.py) answers a refused upload from its headers, so
    the app's tweens never see it: it feeds the request observers itself."""
    from repoproxy.web.early import EarlyCheck

    make_channel("early")
    before = samples(testapp)
    answer = EarlyCheck(app.registry)("POST", "/api/v1/upload/early", "",
                                      {"X_FILE_NAME": "x-1.0-0.conda"})
    assert answer is not None
    assert answer.status == 401
    after = samples(testapp)
    for name, labels in (("repoproxy_http_requests_total", {"status": "401"}),
                         ("repoproxy_auth_failures_total", {}),
                         ("repoproxy_http_request_duration_seconds_count", {"status": "401"})):
        assert value(after, name, route="api.upload", **labels) - \
            value(before, name, route="api.upload", **labels) == 1, name


def test_access_admin_or_loopback_only(testapp: Any, admin_headers: dict[str, str]) -> None:
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    refused = testapp.get("/-/metrics", extra_environ=remote, status=403)
    assert refused.json["error"] == "forbidden"
    ok = testapp.get("/-/metrics", extra_environ=remote, headers=admin_headers)
    assert ok.content_type == "text/plain"
    assert "repoproxy_http_requests_total" in ok.text
    assert "repoproxy_http_requests_total" in testapp.get("/-/metrics",
                                                          extra_environ=LOOPBACK).text


def test_404_flood_adds_no_series(testapp: Any) -> None:
    # warm-up: the series of an unknown channel's path and of an unmatched path exist first
    testapp.get("/no-such/thing", status="4*")
    testapp.get("/-/no-such-thing", status=404)
    before = set(samples(testapp))
    for i in range(1000):
        if i % 2:
            testapp.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}", status="4*")
        else:
            testapp.get(f"/-/{uuid.uuid4().hex}", status=404)
    after = set(samples(testapp))
    assert after == before
    assert any(dict(k[1]).get("route") == "none" for k in after)


CHILD = """
import sys
from repoproxy_metrics import metrics
metrics.DOWNLOADS.labels(channel="mp").inc(int(sys.argv[1]))
"""


def test_multiprocess_aggregation(testapp: Any, tmp_path: Path, monkeypatch: Any) -> None:
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, check=True, timeout=60)
    assert len(list(multiproc.glob("*.db"))) >= 2
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc))
    assert value(samples(testapp), "repoproxy_downloads_total", channel="mp") == 7


def test_hook_metrics_collectors(services: Any) -> None:
    from prometheus_client import Gauge
    from repoproxy_metrics import metrics
    from webtest import TestApp

    from repoproxy import hookimpl
    from repoproxy.web.app import make_app

    class Plugin:
        @hookimpl
        def repoproxy_metrics_collectors(self, registry: Any) -> None:
            gauge = Gauge("test_plugin_queue_length", "items waiting", registry=registry)
            gauge.set(5)
            self.gauge = gauge

    plugin = Plugin()
    services.pm.register(plugin, name="metrics-test-plugin")
    try:
        testapp = TestApp(make_app(services))
        assert value(samples(testapp), "test_plugin_queue_length") == 5
    finally:
        metrics.extra_registry().unregister(plugin.gauge)
        services.pm.unregister(plugin)


def test_disabled_serves_no_metrics(settings: dict[str, Any]) -> None:
    from webtest import TestApp

    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    svc = load_core({**settings, "repoproxy_metrics.enabled": "false"}, {})
    try:
        testapp = TestApp(make_app(svc))
        resp = testapp.get("/-/metrics", extra_environ=LOOPBACK, status=404)
        assert resp.json["error"] == "not-found"
    finally:
        svc.close()


def test_loopback_refused_when_not_allowed(settings: dict[str, Any]) -> None:
    from webtest import TestApp

    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    svc = load_core({**settings, "repoproxy_metrics.allow_loopback": "false"}, {})
    try:
        testapp = TestApp(make_app(svc))
        testapp.get("/-/metrics", extra_environ=LOOPBACK, status=403)
    finally:
        svc.close()


IMPORT_CHILD = """
import sys
from pathlib import Path
from repoproxy.cli import main
sys.argv = ["repoproxy", "import", sys.argv[1], "--channel", "cli", "--create", "--root",
            sys.argv[2]]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
print("prometheus_client" in sys.modules)
"""


def test_a_cli_import_counts_only_where_the_counts_can_be_read(tmp_path: Path) -> None:
    """A process with no app and no multiprocess directory keeps no metrics (nothing could
    read them; loading prometheus_client cost a bulk import's start ~45 ms); in multiprocess
    mode the same import's counts reach the directory the server reads."""
    src = tmp_path / "src" / "noarch"
    build_package(PackageSpec("counted", "1.0"), src, "conda")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPOPROXY_", "PROMETHEUS"))}
    alone = subprocess.run([sys.executable, "-c", IMPORT_CHILD, str(src.parent),
                            str(tmp_path / "root-1")], env=env, check=True, timeout=120,
                           capture_output=True, text=True)
    assert alone.stdout.split()[-1] == "False"
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    shared = subprocess.run([sys.executable, "-c", IMPORT_CHILD, str(src.parent),
                             str(tmp_path / "root-2")], timeout=120, check=True,
                            env={**env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
                            capture_output=True, text=True)
    assert shared.stdout.split()[-1] == "True"
    assert list(multiproc.glob("*.db"))

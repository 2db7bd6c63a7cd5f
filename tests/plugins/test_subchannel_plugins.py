"""Subchannels in the plugins: the watch folder takes ``watch/<channel>/<sub>/``, a policy
assigned to a subchannel filters it and refuses a copy into it (422, every reason, nothing
written)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from policy_helpers import served
from repoproxy_watch.config import WatchConfig
from repoproxy_watch.folder import scan
from repoproxy_watch.worker import WatchWorker

from repoproxy.domain.channels import create_channel
from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings.update({"repoproxy_watch.quiet_seconds": "0.2",
                     "repoproxy_watch.poll_interval": "0.1",
                     "repoproxy_watch.batch_wait": "0.2"})
    return settings


@pytest.fixture
def worker(services: Any) -> Iterator[Callable[[], WatchWorker]]:
    started: list[WatchWorker] = []

    def start() -> WatchWorker:
        w = WatchWorker(services, WatchConfig.from_settings(services.settings))
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def test_watch_folder_layout_of_subchannels(services: Any, tmp_path: Path) -> None:
    config = WatchConfig.from_settings(services.settings)
    for rel in ("main/dev/a-1.0-0.conda", "main/dev/linux-64/b-1.0-0.conda",
                "main/linux-64/c-1.0-0.conda", "main/d-1.0-0.conda",
                "main/dev/linux-64/x/e-1.0-0.conda", "main/dev/nope/f-1.0-0.conda"):
        path = config.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = {c.rel: (c.channel, c.subdir, c.problem is None) for c in scan(config)}
    assert found["main/dev/a-1.0-0.conda"] == ("main/dev", None, True)
    assert found["main/dev/linux-64/b-1.0-0.conda"] == ("main/dev", "linux-64", True)
    assert found["main/linux-64/c-1.0-0.conda"] == ("main", "linux-64", True)
    assert found["main/d-1.0-0.conda"] == ("main", None, True)
    assert found["main/dev/linux-64/x/e-1.0-0.conda"][2] is False  # too deep
    assert found["main/dev/nope/f-1.0-0.conda"][2] is False  # not a subdir


def test_watch_folder_ingests_into_a_subchannel(services: Any, worker: Any,
                                                tmp_path: Path) -> None:
    create_channel(services, "main")
    create_channel(services, "main/dev")
    config = WatchConfig.from_settings(services.settings)
    pkg = build_package(PackageSpec("dropped", "1.0"), tmp_path)
    worker()
    (config.root / "main" / "dev").mkdir(parents=True, exist_ok=True)
    (config.root / "main" / "dev" / pkg.name).write_bytes(pkg.read_bytes())
    deadline = time.monotonic() + 30
    while services.catalog().get_package("main/dev", "noarch", pkg.name) is None:
        assert time.monotonic() < deadline, "not ingested in 30 s"
        time.sleep(0.05)
    assert services.catalog().get_package("main", "noarch", pkg.name) is None


def test_policy_of_a_subchannel_refuses_a_copy_with_every_reason(
        testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str],
        pkgdir: Path) -> None:
    make_channel("main")
    make_channel("prod")
    testapp.post_json("/api/v1/channels/prod/subchannels", {"name": "rc"},
                      headers=admin_headers, status=201)
    testapp.post_json("/api/v1/policies", {"name": "strict", "channel_name": "prod/rc",
                                           "license": "MIT", "exclude_package_name": "bad"},
                      headers=admin_headers, status=201)
    bad = build_package(PackageSpec("bad", "1.0", license="GPL-3.0"), pkgdir)
    good = build_package(PackageSpec("good", "1.0", license="MIT"), pkgdir)
    for path in (bad, good):
        upload_raw(testapp, "main", path, admin_headers)
    refused = testapp.post_json("/api/v1/copy/main", {"package": "bad", "destination": "prod/rc"},
                                headers=admin_headers, status=422).json
    assert len(refused["reasons"]) == 2
    assert all(r.startswith(f"{bad.name}: repoproxy_policy: ") for r in refused["reasons"])
    assert services.catalog().get_package("prod/rc", "noarch", bad.name) is None
    assert not services.store.package_path("prod/rc", "noarch", bad.name).exists()
    assert list(services.store.tmp_dir.iterdir()) == []
    testapp.post_json("/api/v1/copy/main", {"package": "good", "destination": "prod/rc"},
                      headers=admin_headers)
    assert served(testapp, "prod/rc", "noarch") == {good.name}
    # a direct upload to the subchannel meets the same policy
    upload_raw(testapp, "prod/rc", bad, admin_headers, status=422)


def test_plugin_routes_take_a_subchannel(testapp: Any, make_channel: Any,
                                         admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("main")
    testapp.post_json("/api/v1/channels/main/subchannels", {"name": "dev"},
                      headers=admin_headers, status=201)
    pkg = build_package(PackageSpec("tool", "1.0", license="MIT"), pkgdir)
    upload_raw(testapp, "main/dev", pkg, admin_headers)
    testapp.get(f"/main/dev/noarch/{pkg.name}")  # one download to count
    item = testapp.get("/api/channels/main/dev/artifacts/conda/tool/files").json["files"][0]
    badge = item["badges"]["version"]["url"]
    assert badge.startswith("http://localhost/api/channels/main/dev/badges/tool/")
    assert testapp.get(badge).content_type == "image/svg+xml"
    assert item["sbom_url"] == f"http://localhost/api/channels/main/dev/sbom/noarch/{pkg.name}"
    testapp.get(item["sbom_url"], status=(200, 202))
    testapp.get("/api/channels/main/dev/downloads")
    testapp.get("/api/channels/main/dev/artifacts/conda/tool/cves")
    explained = testapp.get(f"/api/v1/policies/explain/main/dev/noarch/{pkg.name}",
                            headers=admin_headers).json
    assert explained


def test_a_policy_hidden_file_cannot_be_copied_or_moved_out(
        testapp: Any, services: Any, make_channel: Any, admin_headers: dict[str, str],
        pkgdir: Path) -> None:
    """A file the origin's policy hides is as absent to copy/move/remove as one never uploaded:
    the same 404, and nothing lands in the destination (else a copy would publish it)."""
    make_channel("main")
    make_channel("prod")
    hidden = build_package(PackageSpec("secret", "1.0", license="GPL-3.0"), pkgdir)
    upload_raw(testapp, "main", hidden, admin_headers)
    testapp.post_json("/api/v1/policies", {"name": "mit-only", "channel_name": "main",
                                           "license": "MIT"},
                      headers=admin_headers, status=201)
    assert served(testapp, "main", "noarch") == set()

    def refused(action: str, package: str) -> tuple[int, Any]:
        body = {"package": package, **({"destination": "prod"} if action != "remove" else {})}
        r = testapp.post_json(f"/api/v1/{action}/main", body, headers=admin_headers,
                              expect_errors=True)
        return r.status_int, r.json["error"]

    for action in ("copy", "move", "remove"):
        assert refused(action, "secret") == refused(action, "never-uploaded") == (404,
                                                                                  "not-found")
    assert services.catalog().get_package("prod", "noarch", hidden.name) is None
    assert services.catalog().get_package("main", "noarch", hidden.name) is not None

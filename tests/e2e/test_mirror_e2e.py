"""End to end: upstream A is a real `repoproxy serve` with real packages; a second real server
mirrors it twice (an active copy and a passive proxy, both made with the `repoproxy mirror`
command through the API); py-rattler solves and installs through both. Then: a new upload to A
reaches both, A goes down and the passive mirror still installs (stale, marked), and 50
parallel requests for one uncached package through 2 server processes on one root cause one
upstream download."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing import rattler_client
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.upstream import Upstream
from repoproxy.testing.wire import upload_prefix_raw

pytestmark = pytest.mark.e2e

SPECS = [
    (PackageSpec("libcore", "2.0", subdir="linux-64", files={"lib/libcore.txt": b"core 2.0"}),
     "conda"),
    (PackageSpec("helper", "0.5", depends=["libcore >=2,<3"],
                 files={"share/helper/README": b"helper 0.5"}), "tar.bz2"),
    (PackageSpec("app", "3.0", subdir="linux-64", depends=["helper >=0.5", "libcore"],
                 files={"bin/app": b"#!/bin/sh\necho app 3.0\n"}), "conda"),
]
PLATFORMS = ["linux-64", "noarch"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}


def _cli(*args: str, url: str, token: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "repoproxy", "mirror", *args, "--url", url,
                          "--token", token], capture_output=True, text=True, env=_env(),
                         timeout=60)
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def _wait_state(url: str, token: str, name: str, states: set[str],
                timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        m = requests.get(f"{url}/api/v1/mirrors/{name}", headers={
            "Authorization": f"Bearer {token}"}, timeout=10).json()
        if m["state"] in states or time.monotonic() > deadline:
            return dict(m)
        time.sleep(0.2)


def _installed(prefix: Path) -> dict[str, str]:
    meta = [json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")]
    return {m["name"]: m["version"] for m in meta}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from repoproxy.testing.fixtures import RunningServer, free_port

    tmp = tmp_path_factory.mktemp("mirror-e2e")
    a = RunningServer(tmp / "a", free_port(), tmp / "a.log", _env()).start()
    a_admin = a.token("--admin", "--name", "admin")
    requests.post(f"{a.url}/api/v1/channels", json={"name": "up"},
                  headers={"Authorization": f"Bearer {a_admin}"}, timeout=30).raise_for_status()
    pkgs = tmp / "pkgs"
    pkgs.mkdir()
    for spec, fmt in SPECS:
        r = upload_prefix_raw(a.url, "up", build_package(spec, pkgs, fmt), a_admin)
        assert r.status_code == 201, r.text
    env = dict(_env(), REPOPROXY_MIRROR__INDEX_FRESHNESS="1", REPOPROXY_MIRROR__POLL_INTERVAL="0.2",
               REPOPROXY_MIRROR__TIMEOUT="2")
    b = RunningServer(tmp / "b", free_port(), tmp / "b.log", env).start()
    b_admin = b.token("--admin", "--name", "admin")
    for channel in ("copy", "proxy"):
        requests.post(f"{b.url}/api/v1/channels", json={"name": channel},
                      headers={"Authorization": f"Bearer {b_admin}"},
                      timeout=30).raise_for_status()
    _cli("--create", "active-a", "--channel", "copy", "--source", f"{a.url}/up", "--mode",
         "active", "--type", "conda", "--subdirs", "noarch, linux-64", "--run_now",
         url=b.url, token=b_admin)
    _cli("--create", "passive-a", "--channel", "proxy", "--source", f"{a.url}/up", "--mode",
         "passive", url=b.url, token=b_admin)
    yield a, a_admin, b, b_admin, tmp, pkgs
    b.stop()
    a.stop()


def test_active_mirror_runs_and_rattler_installs_through_it(servers: Any,
                                                            tmp_path: Path) -> None:
    _, _, b, b_admin, *_ = servers
    m = _wait_state(b.url, b_admin, "active-a", {"completed", "failed"})
    assert m["state"] == "completed", m
    assert m["counts"]["added"] == 3
    shown = _cli("--show", "active-a", "--channel", "copy", url=b.url, token=b_admin)
    assert "state: completed" in shown
    assert "source root: " in shown
    assert requests.get(f"{b.url}/api/v1/channels/copy", timeout=10).json()["mirrors"] == 1
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{b.url}/copy"], ["app"], prefix, PLATFORMS)
    assert result.returncode == 0, result.data
    assert _installed(prefix) == {"app": "3.0", "helper": "0.5", "libcore": "2.0"}
    assert (prefix / "bin/app").read_bytes() == b"#!/bin/sh\necho app 3.0\n"


@pytest.mark.parametrize("use_shards", [True, False], ids=["shards", "flat"])
def test_rattler_installs_through_the_passive_mirror(servers: Any, tmp_path: Path,
                                                     use_shards: bool) -> None:
    _, _, b, *_ = servers
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{b.url}/proxy"], ["app"], prefix, PLATFORMS,
                                    use_shards=use_shards)
    assert result.returncode == 0, result.data
    assert _installed(prefix) == {"app": "3.0", "helper": "0.5", "libcore": "2.0"}
    assert (prefix / "lib/libcore.txt").read_bytes() == b"core 2.0"


def test_a_new_upload_reaches_both_mirrors(servers: Any) -> None:
    a, a_admin, b, b_admin, _, pkgs = servers
    path = build_package(PackageSpec("newcomer", "1.0"), pkgs, "conda")
    assert upload_prefix_raw(a.url, "up", path, a_admin).status_code == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the passive mirror: after the freshness time
        data = requests.get(f"{b.url}/proxy/noarch/repodata.json", timeout=10).json()
        if "newcomer-1.0-0.conda" in data["packages.conda"]:
            break
        time.sleep(0.3)
    assert "newcomer-1.0-0.conda" in data["packages.conda"]
    r = requests.post(f"{b.url}/api/v1/mirrors/active-a/run",
                      headers={"Authorization": f"Bearer {b_admin}"}, timeout=10)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the active mirror: after a run
        data = requests.get(f"{b.url}/copy/noarch/repodata.json", timeout=10).json()
        if "newcomer-1.0-0.conda" in data["packages.conda"]:
            break
        time.sleep(0.3)
    assert "newcomer-1.0-0.conda" in data["packages.conda"]
    assert requests.get(f"{b.url}/copy/noarch/newcomer-1.0-0.conda", timeout=10).content == (
        path.read_bytes())


def test_one_upstream_download_for_many_parallel_requests_through_two_processes(
        servers: Any, tmp_path: Path) -> None:
    from repoproxy.testing.fixtures import RunningServer, free_port

    _, _, b, b_admin, _tmp, _pkgs = servers
    # upstream C: a counting loopback server over a copy of A's channel tree
    upstream = Upstream(servers[0].root / "channels")
    upstream.delay = 0.5  # a slow upstream widens the window for duplicate fetches
    try:
        env = dict(_env(), REPOPROXY_MIRROR__INDEX_FRESHNESS="60")
        second = RunningServer(b.root, free_port(), tmp_path / "b2.log", env).start()
        try:
            requests.post(f"{b.url}/api/v1/channels", json={"name": "fast"},
                          headers={"Authorization": f"Bearer {b_admin}"},
                          timeout=30).raise_for_status()
            _cli("--create", "counted", "--channel", "fast", "--source", f"{upstream.url}/up",
                 "--mode", "passive", url=b.url, token=b_admin)
            target = "linux-64/app-3.0-0.conda"
            urls = [f"{(b.url, second.url)[i % 2]}/fast/{target}" for i in range(50)]
            with ThreadPoolExecutor(max_workers=50) as pool:
                answers = list(pool.map(lambda u: requests.get(u, timeout=120), urls))
            expected = (servers[0].root / "channels/up" / target).read_bytes()
            assert [r.status_code for r in answers] == [200] * 50
            assert all(r.content == expected for r in answers)
            assert upstream.hits[f"up/{target}"] == 1
        finally:
            second.stop()
    finally:
        upstream.close()


RATTLER_INDEX = """
import asyncio, os, sys
import rattler.index
asyncio.run(rattler.index.index_fs(sys.argv[1], write_shards=True, write_zst=True))
os._exit(0)
"""


def test_a_static_rattler_indexed_upstream_with_absolute_urls_is_never_bypassed(
        servers: Any, tmp_path: Path) -> None:
    """Upstream B: a plain file tree indexed by rattler.index whose indexes name absolute
    URLs; the client installs through the proxy and B hears only from the proxy."""
    _, _, b, b_admin, _, _pkgs = servers
    tree = tmp_path / "b"
    for spec, fmt in SPECS:
        (tree / "chan" / spec.subdir).mkdir(parents=True, exist_ok=True)
        build_package(spec, tree / "chan" / spec.subdir, fmt)
    (tree / "chan" / "noarch").mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", RATTLER_INDEX, str(tree / "chan")], check=True,
                   timeout=120, env=_env())
    upstream = Upstream(tree)
    try:
        for subdir in PLATFORMS:  # absolute URLs, as a CDN-fronted channel writes them
            path = tree / "chan" / subdir / "repodata.json"
            data = json.loads(path.read_bytes())
            data.setdefault("info", {})["base_url"] = f"{upstream.url}/chan/{subdir}/"
            data["repodata_version"] = 2
            path.write_text(json.dumps(data))
            (tree / "chan" / subdir / "repodata.json.zst").unlink(missing_ok=True)
        requests.post(f"{b.url}/api/v1/channels", json={"name": "fromb"},
                      headers={"Authorization": f"Bearer {b_admin}"},
                      timeout=30).raise_for_status()
        _cli("--create", "static-b", "--channel", "fromb", "--source",
             f"{upstream.url}/chan", "--mode", "passive", url=b.url, token=b_admin)
        served = requests.get(f"{b.url}/fromb/linux-64/repodata.json", timeout=30).json()
        assert "base_url" not in served["info"]
        assert upstream.url not in json.dumps(served)
        prefix = tmp_path / "env"
        result = rattler_client.install([f"{b.url}/fromb"], ["app"], prefix, PLATFORMS)
        assert result.returncode == 0, result.data
        assert _installed(prefix) == {"app": "3.0", "helper": "0.5", "libcore": "2.0"}
        agents = {h.get("User-Agent") for h in upstream.headers_seen}
        assert agents == {"repoproxy-mirror"}  # B's log: no request from the client
        assert upstream.hits["chan/linux-64/app-3.0-0.conda"] == 1
    finally:
        upstream.close()


def test_a_run_killed_mid_way_resumes_after_restart(servers: Any, tmp_path: Path) -> None:
    import signal

    from repoproxy.testing.fixtures import RunningServer, free_port

    a = servers[0]
    upstream = Upstream(a.root / "channels")
    upstream.delay = 1.0  # each file takes a second: the kill lands mid-run
    env = dict(_env(), REPOPROXY_MIRROR__POLL_INTERVAL="0.2",
               REPOPROXY_MIRROR__DOWNLOAD_WORKERS="1")
    root = tmp_path / "c"
    srv = RunningServer(root, free_port(), tmp_path / "c.log", env).start()
    try:
        admin = srv.token("--admin", "--name", "admin")
        requests.post(f"{srv.url}/api/v1/channels", json={"name": "copy"},
                      headers={"Authorization": f"Bearer {admin}"},
                      timeout=30).raise_for_status()
        _cli("--create", "slow", "--channel", "copy", "--source", f"{upstream.url}/up",
             "--mode", "active", "--subdirs", "noarch, linux-64", "--run_now",
             url=srv.url, token=admin)
        assert _wait_state(srv.url, admin, "slow", {"running"})["state"] == "running"
        time.sleep(1.5)
        srv.stop(signal.SIGKILL)
        srv.start()
        m = _wait_state(srv.url, admin, "slow", {"completed", "failed"}, timeout=90)
        assert m["state"] == "completed", m
        files: dict[str, Any] = {}
        for subdir in PLATFORMS:
            data = requests.get(f"{srv.url}/copy/{subdir}/repodata.json", timeout=10).json()
            files.update(data["packages"])
            files.update(data["packages.conda"])
        # A's three packages (and the one a previous test uploaded, when it ran)
        assert len(files) >= 3
        assert list(root.rglob(".dl-*")) == []
    finally:
        srv.stop()
        upstream.close()


def test_the_passive_mirror_installs_while_the_upstream_is_down(servers: Any,
                                                                tmp_path: Path) -> None:
    a, _, b, *_ = servers
    a.stop()
    time.sleep(1.2)  # past the freshness time: what is served now is stale
    r = requests.get(f"{b.url}/proxy/noarch/repodata.json", timeout=10)
    assert r.status_code == 200
    time.sleep(0.5)  # the background refresh fails against the stopped upstream
    r = requests.get(f"{b.url}/proxy/noarch/repodata.json", timeout=10)
    assert int(r.headers["X-Repoproxy-Stale"]) >= 1
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{b.url}/proxy"], ["app"], prefix, PLATFORMS)
    assert result.returncode == 0, result.data
    assert _installed(prefix)["app"] == "3.0"

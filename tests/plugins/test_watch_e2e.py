"""The watch folder in a real `repoproxy serve`: restarts, SIGKILL mid-burst, py-rattler.

Loopback only; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing import rattler_client
from repoproxy.testing.fixtures import RunningServer
from repoproxy.testing.packages import PackageSpec, build_many, build_package

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0
ENV = {
    "REPOPROXY_WATCH__QUIET_SECONDS": "0.3",
    "REPOPROXY_WATCH__POLL_INTERVAL": "0.1",
    "REPOPROXY_WATCH__BATCH_WAIT": "0.5",
}


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT,
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def start(server_factory: Callable[..., RunningServer], **env: str) -> tuple[RunningServer, str]:
    srv = server_factory(**{**ENV, **env})
    return srv, srv.token("--admin", "--name", "admin")


def create_channel(srv: RunningServer, token: str, name: str) -> None:
    r = requests.post(f"{srv.url}/api/v1/channels", json={"name": name, "privacy": "public"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text


def served(srv: RunningServer, channel: str, subdir: str = "noarch") -> set[str]:
    r = requests.get(f"{srv.url}/{channel}/{subdir}/repodata.json", timeout=TIMEOUT)
    if r.status_code != 200:
        return set()
    rd = r.json()
    return set(rd["packages"]) | set(rd["packages.conda"])


def watch_dir(srv: RunningServer, *parts: str) -> Path:
    path = srv.root.joinpath("watch", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def move_in(staged: list[Path], dest: Path) -> None:
    for path in staged:
        os.replace(path, dest / path.name)


def cli_watch(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    return subprocess.run([sys.executable, "-m", "repoproxy", "watch", "--root", str(root),
                           *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_files_dropped_while_the_server_is_stopped_are_ingested_on_the_next_start(
        server_factory: Callable[..., RunningServer]) -> None:
    srv, token = start(server_factory)
    create_channel(srv, token, "later")
    srv.stop()
    paths = build_many(watch_dir(srv, "later"), 30, prefix="offline")
    srv.start()
    wait_for(lambda: served(srv, "later") == {p.name for p in paths})
    wait_for(lambda: not any(watch_dir(srv, "later").iterdir()))


def test_sigkill_during_a_burst_then_restart_loses_nothing(
        server_factory: Callable[..., RunningServer]) -> None:
    n = 400
    srv, token = start(server_factory, REPOPROXY_WATCH__BATCH_SIZE="20")
    create_channel(srv, token, "burst")
    staging = watch_dir(srv, ".staging")  # same filesystem, hidden: never watched
    names = {p.name for p in build_many(staging, n, prefix="kill")}
    move_in(sorted(staging.iterdir()), watch_dir(srv, "burst"))
    # a quarter of the burst moved into the channel: committed, and (a burst is published
    # once it is over) perhaps not yet in repodata.json, which the restart must then build
    channel_dir = srv.root / "channels" / "burst" / "noarch"
    wait_for(lambda: channel_dir.is_dir()
             and len({p.name for p in channel_dir.iterdir()} & names) >= n // 4, interval=0.01)
    srv.stop(signal.SIGKILL)

    in_channel = {p.name for p in channel_dir.iterdir()} & names
    in_folder = {p.name for p in watch_dir(srv, "burst").iterdir()}
    rejected = {p.name for p in watch_dir(srv, ".rejected").rglob("*")} & names
    assert names <= in_channel | in_folder | rejected, "files lost by the kill"
    assert in_folder, "the burst was over before the kill: nothing tested"

    srv.start()
    wait_for(lambda: served(srv, "burst") == names, timeout=90)
    wait_for(lambda: not any(watch_dir(srv, "burst").iterdir()))
    assert not rejected
    assert not list(watch_dir(srv, ".rejected").rglob("*.reason.json"))


def test_rattler_installs_a_package_that_was_only_dropped_into_the_folder(
        server_factory: Callable[..., RunningServer], tmp_path: Path) -> None:
    srv, token = start(server_factory)
    create_channel(srv, token, "dropped")
    script = b"#!/bin/sh\necho dropped\n"
    spec = PackageSpec("dropped-tool", "1.2", files={"bin/dropped-tool": script})
    path = build_package(spec, watch_dir(srv, ".staging"))
    os.replace(path, watch_dir(srv, "dropped") / path.name)
    wait_for(lambda: path.name in served(srv, "dropped"))
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/dropped"], ["dropped-tool"], prefix,
                                    ["linux-64", "noarch"])
    assert result.ok, result.data
    assert (prefix / "bin" / "dropped-tool").read_bytes() == script


def test_status_over_http_and_cli_while_the_server_runs(
        server_factory: Callable[..., RunningServer]) -> None:
    srv, token = start(server_factory)
    create_channel(srv, token, "seen")
    assert requests.get(f"{srv.url}/api/v1/watch", timeout=TIMEOUT).status_code == 401
    path = build_package(PackageSpec("bad", "1.0"), watch_dir(srv, "seen"))
    path.write_bytes(b"not a package")
    good = build_many(watch_dir(srv, "seen"), 3, prefix="ok")
    headers = {"Authorization": f"Bearer {token}"}

    def report() -> dict[str, Any]:
        data: dict[str, Any] = requests.get(f"{srv.url}/api/v1/watch", headers=headers,
                                            timeout=TIMEOUT).json()
        return data

    wait_for(lambda: report()["processed"] == len(good) and report()["rejected"] == 1)
    now = report()
    assert now["running"] is True
    assert now["pending"] == 0
    assert {"channel": "seen", "path": str(srv.root.resolve() / "watch" / "seen"),
            "channel_exists": True, "pending": 0} in now["folders"]
    assert now["last_error"]["file"] == f"seen/{path.name}"
    assert now["repodata_builds"] >= 1

    offline = json.loads(cli_watch(srv.root, "--status").stdout)
    assert offline["running"] is True
    assert offline["processed"] == len(good)
    standby = cli_watch(srv.root, "--once", "--timeout", "2")
    assert standby.returncode == 1
    assert "another worker" in standby.stderr
    srv.stop()
    assert json.loads(cli_watch(srv.root, "--status").stdout)["running"] is False


def test_watch_command_runs_in_the_foreground_until_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    env.update(ENV, REPOPROXY_WATCH__CREATE_CHANNELS="true")
    log = tmp_path / "watch.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "repoproxy", "watch", "--root", str(root)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: (root / "watch" / ".lock").exists())
        path = build_package(PackageSpec("fg", "1.0"), root / "watch" / "fgchan")
        wait_for(lambda: not path.exists())
        assert (root / "channels" / "fgchan" / "noarch" / path.name).exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

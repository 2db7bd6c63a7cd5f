"""`repoproxy serve --workers N`: a supervisor and N forked processes on one socket.

Start and clean stop, a worker killed with SIGKILL comes back while requests keep succeeding,
exactly one process, which serves nothing, runs the background workers (the watch folder
ingests a file once),
metrics add up over the processes and a 404 flood adds no series, and connections stay open
after a 304. Loopback only; every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from repoproxy.testing.fixtures import RunningServer
from repoproxy.testing.packages import PackageSpec, build_package

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT,
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return {int(p) for p in path.read_text().split()}
    except FileNotFoundError:
        return set()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def started(srv: RunningServer, n: int) -> set[int]:
    """The supervisor's children, once ``n`` serving workers and the background workers'
    process are up and the server answers."""
    assert srv.proc is not None
    pids: set[int] = wait_for(
        lambda: len(children(srv.proc.pid)) == n + 1  # type: ignore[union-attr]
        and children(srv.proc.pid))  # type: ignore[union-attr]
    wait_for(lambda: _health(srv))
    return pids


def _health(srv: RunningServer) -> bool:
    try:
        return requests.get(f"{srv.url}/-/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def make_public(srv: RunningServer, token: str, name: str) -> None:
    r = requests.post(f"{srv.url}/api/v1/channels", json={"name": name, "privacy": "public"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text


def test_start_crash_restart_and_clean_stop(
        server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory(workers=2)
    assert srv.proc is not None
    pids = started(srv, 2)
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    # requests keep succeeding while the worker is down and after it is replaced
    for _ in range(20):
        assert requests.get(f"{srv.url}/-/health", timeout=TIMEOUT).status_code == 200
    now = wait_for(lambda: len(children(srv.proc.pid)) == 3  # type: ignore[union-attr]
                   and victim not in children(srv.proc.pid)  # type: ignore[union-attr]
                   and children(srv.proc.pid))  # type: ignore[union-attr]
    assert pids - {victim} <= now
    for _ in range(20):
        assert requests.get(f"{srv.url}/-/health", timeout=TIMEOUT).status_code == 200
    assert srv.stop(signal.SIGTERM) == 0
    assert not any(alive(p) for p in now), "a worker outlived the supervisor's stop"
    log = srv.log_path.read_text()
    assert "exited (signal 9); starting it again" in log
    assert "Traceback" not in log


def test_workers_follow_a_killed_supervisor(
        server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory(workers=2)
    pids = started(srv, 2)
    srv.stop(signal.SIGKILL)
    wait_for(lambda: not any(alive(p) for p in pids), timeout=20)


def test_one_process_runs_the_background_workers(
        server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory(workers=2, REPOPROXY_WATCH__QUIET_SECONDS="0.3",
                         REPOPROXY_WATCH__POLL_INTERVAL="0.1",
                         REPOPROXY_WATCH__BATCH_WAIT="0.5")
    started(srv, 2)
    token = srv.token("--admin", "--name", "admin")
    make_public(srv, token, "dropped")
    folder = srv.root / "watch" / "dropped"
    folder.mkdir(parents=True, exist_ok=True)
    staging = srv.root / "watch" / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    path = build_package(PackageSpec("once", "1.0"), staging)
    os.replace(path, folder / path.name)

    def served() -> bool:
        r = requests.get(f"{srv.url}/dropped/noarch/repodata.json", timeout=TIMEOUT)
        return r.status_code == 200 and path.name in r.json()["packages.conda"]

    wait_for(served)
    wait_for(lambda: not any(folder.iterdir()))
    time.sleep(1.5)  # a second watcher, if there were one, would have had its turn by now
    audit = requests.get(f"{srv.url}/api/v1/audit",
                         headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    entries = [json.loads(line) for line in audit.text.splitlines() if line.strip()]
    uploads = [e for e in entries if e["action"] == "package.upload"
               and path.name in (e.get("target") or "")]
    assert len(uploads) == 1, uploads
    rejected = srv.root / "watch" / ".rejected"
    assert not rejected.exists() or not list(rejected.rglob("*.reason.json"))
    log = srv.log_path.read_text()
    # in a process of their own, which serves nothing
    assert log.count("background process started") == 1, log[-3000:]
    assert len(re.findall(r"starting \d+ background workers", log)) == 1, log[-3000:]
    assert "background and process workers" not in log, log[-3000:]


def _series(srv: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{srv.url}/-/metrics", timeout=TIMEOUT).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_add_up_over_workers_and_a_404_flood_adds_no_series(
        server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory(workers=2)
    started(srv, 2)
    key = ("repoproxy_http_requests_total", (("route", "meta.health"), ("status", "200")))
    with requests.Session() as one, requests.Session() as two:  # two connections
        for _ in range(2):
            one.get(f"{srv.url}/-/nothing-{uuid.uuid4().hex}", timeout=TIMEOUT)
            two.get(f"{srv.url}/-/nothing-{uuid.uuid4().hex}", timeout=TIMEOUT)
        _series(srv)  # the scrape's own series exist from the second scrape on
        before = _series(srv)
        for i in range(100):
            session = one if i % 2 else two
            assert session.get(f"{srv.url}/-/x{uuid.uuid4().hex}/{i}/y",
                               timeout=TIMEOUT).status_code == 404
            session.get(f"{srv.url}/-/health", timeout=TIMEOUT)
    after = _series(srv)
    assert set(after) == set(before), set(after) ^ set(before)
    assert after[key] - before.get(key, 0) == 100
    assert srv.stop() == 0


def test_connection_kept_alive_after_a_304(
        server_factory: Callable[..., RunningServer]) -> None:
    srv = server_factory()
    token = srv.token("--admin", "--name", "admin")
    make_public(srv, token, "keep")
    etag = requests.get(f"{srv.url}/keep/noarch/repodata.json", timeout=TIMEOUT,
                        headers={"Accept-Encoding": "identity"}).headers["ETag"]
    request = (f"GET /keep/noarch/repodata.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"If-None-Match: {etag}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        answers = b""
        for n in (1, 2):
            sock.sendall(request)
            while answers.count(b"\r\n\r\n") < n:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {n - 1} answer(s): {answers!r}"
                answers += chunk
    heads = answers.split(b"\r\n\r\n")[:2]
    assert all(h.startswith(b"HTTP/1.1 304 ") for h in heads), heads
    assert not any(b"connection: close" in h.lower() for h in heads), heads
    assert not any(b"content-length" in h.lower() for h in heads), heads

"""The failed-login limit holds across `repoproxy serve --workers 2`, and behind a trusted
proxy it counts per real client, never per address a client wrote itself.

Which worker accepts a connection is the kernel's choice; a stopped process (SIGSTOP) accepts
nothing, so stopping one worker sends every new connection to the other. Loopback only;
every wait has a deadline.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from repoproxy.testing.fixtures import RunningServer

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0

PASSWORD = "alice-password-1"


def add_user(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    subprocess.run([sys.executable, "-m", "repoproxy", "user", "add", "alice", "--root",
                    str(root), "--password-stdin"], input=f"{PASSWORD}\n", text=True,
                   check=True, capture_output=True, env=env, timeout=60)


def login(srv: RunningServer, password: str, forwarded_for: str | None = None) -> int:
    """One login on a new connection (so the kernel picks the worker that accepts it)."""
    auth = base64.b64encode(f"alice:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Connection": "close"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return requests.get(f"{srv.url}/api/v1/whoami", headers=headers,
                        timeout=TIMEOUT).status_code


def workers(srv: RunningServer, n: int) -> set[int]:
    """The supervisor's ``n`` serving worker pids, once they are up and the server answers
    (its other child, the background workers' process, serves nothing)."""
    assert srv.proc is not None
    path = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        background = {int(p) for p in re.findall(r"background process started \(pid (\d+)\)",
                                                  srv.log_path.read_text())}
        pids = {int(p) for p in path.read_text().split()} - background
        if background and len(pids) == n:
            try:
                if requests.get(f"{srv.url}/-/health", timeout=5).status_code == 200:
                    return pids
            except requests.RequestException:
                pass
        time.sleep(0.05)
    raise AssertionError(f"{n} workers did not start within {TIMEOUT} s")


@contextmanager
def only(pids: set[int], serving: int) -> Iterator[None]:
    """Every worker but ``serving`` stopped (SIGSTOP) for the block."""
    others = pids - {serving}
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def test_failed_logins_are_counted_across_worker_processes(
        tmp_path: Path, server_factory: Callable[..., RunningServer]) -> None:
    root = tmp_path / "root"
    add_user(root)
    srv = server_factory(root, workers=2, REPOPROXY_AUTH__MAX_FAILURES="3",
                         REPOPROXY_AUTH__MAX_FAILURES_PER_ADDRESS="0")
    first, second = sorted(workers(srv, 2))
    with only({first, second}, first):
        assert [login(srv, "wrong-1"), login(srv, "wrong-2")] == [401, 401]
    with only({first, second}, second):
        # this process has seen one failure of its own; the limit counts all three
        assert login(srv, "wrong-3") == 401
        refused = login(srv, PASSWORD)
    assert refused == 429, "the other worker's failures were not counted"
    with only({first, second}, first):
        assert login(srv, PASSWORD) == 429
    assert (root / "throttle.db").is_file()


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited_not_the_proxy(
        tmp_path: Path, server_factory: Callable[..., RunningServer]) -> None:
    root = tmp_path / "root"
    add_user(root)
    # the per-address limit alone (the user name limit off): 2 failures per address
    srv = server_factory(root, workers=1, REPOPROXY_TRUSTED_PROXY="127.0.0.1",
                         REPOPROXY_AUTH__MAX_FAILURES="0",
                         REPOPROXY_AUTH__MAX_FAILURES_PER_ADDRESS="2")
    # the proxy appends the real client (203.0.113.7) to whatever the client sent: the
    # client's own entry (a forged address, new every time) must not count
    for n in range(2):
        assert login(srv, "wrong", f"198.51.100.{n}, 203.0.113.7") == 401
    assert login(srv, PASSWORD, "198.51.100.99, 203.0.113.7") == 429
    # another client behind the same proxy is not locked out
    assert login(srv, PASSWORD, "203.0.113.8") == 200


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(
        tmp_path: Path, server_factory: Callable[..., RunningServer]) -> None:
    root = tmp_path / "root"
    add_user(root)
    srv = server_factory(root, workers=1, REPOPROXY_AUTH__MAX_FAILURES="0",
                         REPOPROXY_AUTH__MAX_FAILURES_PER_ADDRESS="2")
    # a client that writes a new address into every request is still one address
    for n in range(2):
        assert login(srv, "wrong", f"198.51.100.{n}") == 401
    assert login(srv, PASSWORD, "198.51.100.50") == 429

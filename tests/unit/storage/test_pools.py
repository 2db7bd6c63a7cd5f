"""Process-lifetime thread pools survive a fork: the child makes its own threads."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from repoproxy.storage import store
from repoproxy.storage.pools import ProcessPool


def _in_child(work: object) -> int:
    """Run ``work()`` in a forked child; its exit status (-1: it hung and was killed)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            code = 0 if work() else 2  # type: ignore[operator]
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_a_pool_made_before_a_fork_runs_jobs_in_the_child() -> None:
    pool = ProcessPool(1, "test-pool")
    assert pool.get().submit(lambda: 41 + 1).result(timeout=10) == 42
    assert _in_child(lambda: pool.get().submit(lambda: True).result(timeout=10)) == 0


def test_files_freed_later_in_a_child_of_a_process_that_freed_some(tmp_path: Path) -> None:
    """free_later's thread existed in the parent only: without the reset, the child's
    wait_freed() waited for a thread that was never there."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"x")
    second.write_bytes(b"y")
    store.free_later([first])
    store.wait_freed()
    assert not first.exists()

    def child() -> bool:
        store.free_later([second])
        store.wait_freed()
        return not second.exists()

    assert _in_child(child) == 0

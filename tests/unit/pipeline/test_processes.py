"""Worker pools whose workers end with their maker (pipeline/processes.py): a real process
makes a pool, is SIGKILLed, and its workers (and, with forkserver, the fork server) must be
gone within a bounded wait. Without the initializer they wait on the pool's queue forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MAKER = r"""
import multiprocessing, os, sys, time
from repoproxy.pipeline.processes import worker_pool

def pid_after(seconds):
    time.sleep(seconds)  # every worker busy once, so that each reports its pid
    return os.getpid()

if __name__ == "__main__":
    ctx = multiprocessing.get_context(sys.argv[1])
    pool = worker_pool(2, ctx)
    pids = {f.result() for f in [pool.submit(pid_after, 0.5) for _ in range(4)]}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)  # killed by the test
"""


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody reaped yet (its code no longer runs)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return any(line.split()[1] == "Z" for line in status.splitlines()
               if line.startswith("State:"))


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_workers_end_when_their_maker_is_killed(tmp_path: Path, method: str) -> None:
    script = tmp_path / "maker.py"
    script.write_text(MAKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    with subprocess.Popen([sys.executable, str(script), method], stdout=subprocess.PIPE,
                          text=True, env=env) as maker:
        try:
            assert maker.stdout is not None
            workers = [int(p) for p in maker.stdout.readline().split()]
            assert workers, "the maker printed no worker"
            assert maker.pid not in workers
            assert not any(_gone(pid) for pid in workers)  # alive while their maker is
            maker.send_signal(signal.SIGKILL)
            maker.wait(30)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not all(_gone(pid) for pid in workers):
                time.sleep(0.05)
            assert all(_gone(pid) for pid in workers), "workers outlived their killed maker"
        finally:
            if maker.poll() is None:
                maker.kill()

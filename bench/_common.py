"""Shared helpers for the benchmarks: timing, a served root, medians and ratios."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

RATTLER_INDEX = """
import asyncio, os, sys, time
import rattler.index
t = time.perf_counter()
asyncio.run(rattler.index.index_fs(sys.argv[1], write_shards=True, write_zst=True))
print(time.perf_counter() - t, flush=True)
os._exit(0)
"""


def compile_sources() -> None:
    """Byte-compile repoproxy's own sources, as pip does when it installs a wheel, and say so.

    A source tree installed in editable mode has no ``.pyc`` files until some run writes
    them, and with ``PYTHONDONTWRITEBYTECODE`` set (it is, on the project's machine) no run
    ever does: every ``repoproxy`` command then compiled its ~70 modules again, 0.13 s of a
    CLI start-up that an installed repoproxy (and py-rattler, compiled by pip) does not
    pay. ``py_compile`` writes the files whatever that variable says."""
    import compileall

    import repoproxy

    tree = Path(repoproxy.__file__).resolve().parent.parent
    for part in ("repoproxy", "plugins"):
        if (tree / part).is_dir():
            compileall.compile_dir(str(tree / part), quiet=1)
    note = " (PYTHONDONTWRITEBYTECODE is set: no run would have)" if os.environ.get(
        "PYTHONDONTWRITEBYTECODE") else ""
    print(f"byte-compiled repoproxy's sources under {tree}, as an install does{note}",
          flush=True)


def load() -> str:
    """The 1-minute load average, printed next to every figure (2 shared cores here)."""
    return f"load {os.getloadavg()[0]:.1f}"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}


def serving_env() -> dict[str, str]:
    """:func:`clean_env` for a server whose serving is measured: its SBOM queue paused.

    The set-up import queued one SBOM per file, and a one-process server builds them in its
    own process, on a thread competing for the GIL with the requests being measured (a
    profile of the 304 row showed that thread in 22% of the samples, some 30% more CPU per
    request than with the queue paused). A server that has built its backlog serves with an
    idle worker, which is what the serving rows are meant to measure; a paused queue is the
    same for serving."""
    return {**clean_env(), "REPOPROXY_SBOM__WORKER_INTERVAL": "86400"}


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(cmd: list[str], env: dict[str, str] | None = None,
        **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True,  # type: ignore[call-overload]
                          env=env if env is not None else clean_env(), **kw)


def python() -> str:
    return sys.executable


def fmt_ratio(ours: float, theirs: float, higher_is_better: bool) -> str:
    if theirs == 0 or ours == 0:
        return "n/a"
    ratio = ours / theirs
    better = ratio > 1 if higher_is_better else ratio < 1
    return f"{ratio:.2f}x ({'better' if better else 'worse'})"


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

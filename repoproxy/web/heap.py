"""glibc's heap in a serving process: fewer malloc arenas, and freed memory handed back.

Two allocator effects, not Python's objects, made most of a serving process's RSS after it
answered big listings (``bench/memory.py``, 50,000-file channel):

- **arenas**: glibc gives each thread that allocates concurrently an arena of its own (up to
  8 per core), and memory freed in one is reused only by the threads that land on it. A
  waitress process has 8 request threads plus background workers; each big answer left its
  garbage in whichever arena its thread had. :func:`limit_arenas` caps them (``mallopt
  (M_ARENA_MAX)``). Python threads allocate under the GIL, so one or two arenas cost them
  almost no lock contention.
- **freed heap kept**: glibc returns freed memory to the system only from the top of a heap
  and above a threshold; the holes a finished request leaves stay resident. A
  :class:`HeapTrimmer` thread looks at the free bytes the arenas hold every few seconds
  (``mallinfo2``, no lock held long) and calls ``malloc_trim(0)`` when they pass a threshold:
  the request threads never pay for it, and the cost (a few ms per trim) is paid only after
  a big answer.

Elsewhere (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

from repoproxy.domain.periodic import PeriodicWorker

log = logging.getLogger(__name__)

#: mallopt's parameter number for the arena cap (malloc.h)
M_ARENA_MAX = -8
#: free bytes held in the arenas above which the trimmer hands them back
TRIM_THRESHOLD = 8 * 1024 * 1024
#: seconds between two looks at the arenas
TRIM_INTERVAL = 2.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim, libc.mallinfo2  # noqa: B018 - glibc >= 2.33 only
    except (OSError, AttributeError):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return libc


_LIBC = _libc()


def limit_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at ``count`` (0: leave glibc's default); call it before the
    serving threads start. Whether the cap was set."""
    if count <= 0 or _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, count))


def free_held() -> int:
    """Bytes free inside glibc's arenas (freed but still resident, or reusable); 0 elsewhere."""
    if _LIBC is None:
        return 0
    return int(_LIBC.mallinfo2().fordblks)


def trim() -> None:
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class HeapTrimmer(PeriodicWorker):
    """Hands glibc's freed heap back once ``threshold`` more bytes of it are held than after
    the last trim (trimmed holes still count as free in glibc's figures, though no longer
    resident: the growth since, not the total, says a big answer has just finished)."""

    name = "repoproxy-heap-trimmer"
    join_timeout = 2.0

    def __init__(self, interval: float = TRIM_INTERVAL, threshold: int = TRIM_THRESHOLD) -> None:
        super().__init__(interval)
        self.threshold = threshold
        self.trims = 0
        self._base = free_held()

    def tick(self) -> None:
        held = free_held()
        if held > self._base + self.threshold:
            trim()
            self.trims += 1
            self._base = free_held()
        else:  # freed memory reused since: later frees count from the lower figure
            self._base = min(self._base, held)

    @staticmethod
    def available() -> bool:
        return _LIBC is not None

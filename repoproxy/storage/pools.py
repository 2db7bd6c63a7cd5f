"""Thread pools kept for a process's life, made on first use, and made again in a forked child.

Starting threads per call costs more than the small jobs they run (an fsync, a compression
beside a write, an unlink), so the index writers and the store keep one pool each. A forked
process (``repoproxy serve``'s recovery child, ``--workers``) has none of its parent's threads:
a pool inherited from before the fork would take jobs that no thread ever runs, and a lock
held at the fork would stay taken. So every pool is forgotten in the child, which makes its own.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


class ProcessPool:
    """``get()``: this process's pool of ``workers`` threads named ``prefix``-N."""

    def __init__(self, workers: int, prefix: str) -> None:
        self.workers, self.prefix = workers, prefix
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        _POOLS.append(self)

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix=self.prefix)
            return self._pool

    def made(self) -> ThreadPoolExecutor | None:
        """The pool if this process made it already (nothing was ever given to it else)."""
        return self._pool

    def _forget(self) -> None:
        self._pool, self._lock = None, threading.Lock()


_POOLS: list[ProcessPool] = []


def _forget_in_child() -> None:
    for pool in _POOLS:
        pool._forget()


os.register_at_fork(after_in_child=_forget_in_child)

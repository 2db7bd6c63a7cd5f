"""When is a file complete? When its size, mtime, ctime and inode stopped changing for the
quiet time, or when it was renamed into place (an atomic move-in).

ctime cannot be set by a writer (``cp -p`` and ``touch`` set mtime only), so a file whose
ctime is already older than the quiet time when it is first seen (files dropped while the
server was down) is ready at once.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .folder import Candidate

Ident = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def ident_of(st: os.stat_result) -> Ident:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def stat_ident(path: Path) -> Ident | None:
    try:
        return ident_of(path.lstat())
    except OSError:
        return None


@dataclass
class Seen:
    cand: Candidate
    ident: Ident
    since: float  # monotonic time from which the file has been unchanged
    busy: bool = False  # being prepared/committed
    attempts: int = 0  # unexpected failures so far
    not_before: float = 0.0  # back-off after an unexpected failure
    suspect: bool = False  # was being read when a reading process died: read it alone


class Tracker:
    """Files seen in the folder and how long each has been unchanged. One owner thread;
    :meth:`moved_in` may be called from the observer's thread."""

    def __init__(self, quiet: float) -> None:
        self.quiet = quiet
        self.files: dict[Path, Seen] = {}
        self._moved: set[Path] = set()
        self._lock = threading.Lock()

    def moved_in(self, path: Path) -> None:
        """An event said ``path`` was renamed into place: it is complete."""
        with self._lock:
            self._moved.add(path)

    def observe(self, found: Iterable[Candidate]) -> None:
        """Take a scan's snapshot: new and changed files (re)start their quiet time."""
        now, wall = time.monotonic(), time.time()
        with self._lock:
            moved, self._moved = self._moved, set()
        present: set[Path] = set()
        for cand in found:
            present.add(cand.path)
            ident = stat_ident(cand.path)
            if ident is None:
                continue
            seen = self.files.get(cand.path)
            if seen is not None and seen.busy:
                continue
            if cand.path in moved:
                since = -math.inf
            elif seen is None:
                last_change = max(ident[1], ident[2]) / 1e9
                since = now - max(0.0, wall - last_change)
            elif seen.ident != ident:
                since = now
            else:
                seen.cand = cand
                continue
            old = seen or Seen(cand, ident, since)
            self.files[cand.path] = Seen(cand, ident, since, attempts=old.attempts,
                                         not_before=old.not_before, suspect=old.suspect)
        for path in [p for p, s in self.files.items() if p not in present and not s.busy]:
            del self.files[path]

    def ready(self) -> list[Seen]:
        now = time.monotonic()
        return [s for s in self.files.values()
                if not s.busy and now - s.since >= self.quiet and now >= s.not_before]

    def next_ready_in(self) -> float | None:
        """Seconds until the next waiting file may be ready (None: nothing waits)."""
        now = time.monotonic()
        waits = [max(s.since + self.quiet, s.not_before) - now
                 for s in self.files.values() if not s.busy]
        return max(0.0, min(waits)) if waits else None

    def waiting(self) -> int:
        """Files seen but not yet taken (still being written, or waiting to be taken)."""
        return sum(1 for s in self.files.values() if not s.busy)

    def changed(self, seen: Seen) -> bool:
        """Did the file change since it was judged complete? Then start its quiet time anew."""
        ident = stat_ident(seen.cand.path)
        if ident == seen.ident:
            return False
        seen.since = time.monotonic()
        if ident is not None:
            seen.ident = ident
        return True

    def forget(self, seen: Seen) -> None:
        self.files.pop(seen.cand.path, None)

    def release(self, seen: Seen, *, failed: bool = False) -> None:
        """The file stays in the folder: look at it again later (backing off on failures)."""
        seen.busy = False
        if failed:
            seen.attempts += 1
            seen.not_before = time.monotonic() + min(60.0, 2.0 ** seen.attempts)

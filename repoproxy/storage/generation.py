"""The access generation: a counter in a stamp file beside the catalog, moved on (after
commit) whenever channels, members, users or tokens change, in any process.

Readers keep in-memory snapshots (the channel map, verified tokens) and compare the counter
on every request: a change committed by another process (another worker, the CLI) is seen
on the next request, without a catalog query per request. The counter (the file's first 8
bytes, little-endian) is read from a shared memory mapping of the file (:class:`StampReader`):
no system call per request. A ``stat()`` per request cost a server's 304 about a tenth of
its rate: each call gives up the GIL, and the thread then waits its turn to take it back (two
more context switches per request, measured).

Ordering makes this correct across processes: a writer moves the counter only after its
transaction committed, and a reader reads the counter *before* it reloads, so a snapshot is
never newer-stamped than the data it holds. Writers change the file in place (``pwrite``
under a lock), so every process's mapping sees the new value at once; the file is replaced
only when this process may not write it (made by another user, e.g. the CLI run as root):
readers check which file the path names once a second (:data:`RECHECK_SECONDS`), so such a
change reaches other processes within that second.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time
from pathlib import Path

from sqlite_utils import Database

from repoproxy.storage.store import atomic_write

#: the attribute of a Database marking "bump after this transaction commits"
_PENDING = "_repoproxy_access_changed"
#: the counter's size at the start of the file
SIZE = 8
#: how often a reader checks that its mapping is still the file the path names
RECHECK_SECONDS = 1.0
_COMMENT = b"\n# repoproxy's access generation: the first 8 bytes, a counter\n"
#: how many times this process replaced a stamp file: its own readers look again at once
_replaced = 0


def stamp_path(catalog_path: Path) -> Path:
    return catalog_path.with_name(catalog_path.name + ".generation")


def _value(data: bytes) -> int:
    return int.from_bytes(data[:SIZE].ljust(SIZE, b"\0"), "little")


def read_stamp(path: Path | str) -> int:
    """The current generation (0 before the first change), read once (a reader that asks on
    every request keeps a :class:`StampReader`)."""
    try:
        with open(path, "rb") as f:
            return _value(f.read(SIZE))
    except FileNotFoundError:
        return 0


class StampReader:
    """The counter of one stamp file, read from a shared mapping of it."""

    def __init__(self, path: Path | str, recheck: float = RECHECK_SECONDS) -> None:
        self.path = str(path)
        self.recheck = recheck
        self._map: mmap.mmap | None = None
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the mapped file
        self._until = 0.0  # when to check the path again
        self._seen = -1  # the replacements of this process seen (``_replaced``)
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def read(self) -> int:
        mapped = self._map
        if mapped is not None and time.monotonic() < self._until and _replaced == self._seen:
            return int.from_bytes(mapped[:SIZE], "little")
        return self._remap()

    def _remap(self) -> int:
        if self._pid != os.getpid():
            # a forked child (``serve --workers``): a lock another thread of the parent held
            # at the fork would never be released here
            self._lock, self._pid = threading.Lock(), os.getpid()
        with self._lock:
            self._seen = _replaced
            try:
                st = os.stat(self.path)  # noqa: PTH116 (str paths)
            except FileNotFoundError:
                self._map, self._file = None, None
                return 0
            if self._map is None or self._file != (st.st_dev, st.st_ino):
                self._map, self._file = None, None
                if st.st_size < SIZE:
                    return read_stamp(self.path)  # being made: mapped on a later read
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    # only the counter: a mapping past a file's end faults, and the file
                    # is never shortened (writers extend it to SIZE before they write)
                    self._map = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
                    self._file = (st.st_dev, st.st_ino)
                finally:
                    os.close(fd)
            self._until = time.monotonic() + self.recheck
            return int.from_bytes(self._map[:SIZE], "little")


def bump(path: Path) -> None:
    """Move the generation forward: a new value, later than the last one, written in place."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:
        _replace(path)  # made by another user, who must still be able to read it
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # one read-modify-write at a time, across processes
        if os.fstat(fd).st_size < SIZE:
            os.ftruncate(fd, SIZE)  # a new file: never shortens one another process wrote
        old = _value(os.pread(fd, SIZE, 0))
        # a nanosecond time: two changes within one clock tick still differ, and a file made
        # again later starts past any value an older one had
        os.pwrite(fd, max(time.time_ns(), old + 1).to_bytes(SIZE, "little"), 0)
    finally:
        os.close(fd)  # releases the lock


def _replace(path: Path) -> None:
    global _replaced
    old = read_stamp(path)
    stamp = max(time.time_ns(), old + 1)
    atomic_write(path, stamp.to_bytes(SIZE, "little") + _COMMENT, sync_dir=False)
    _replaced += 1


def _db_path(db: Database) -> Path:
    cached = getattr(db, "_repoproxy_path", None)
    if cached is None:
        row = db.conn.execute("PRAGMA database_list").fetchone()
        cached = Path(row[2])
        db._repoproxy_path = cached  # type: ignore[attr-defined]
    return Path(cached)


def access_changed(db: Database) -> None:
    """Channels, members, users or tokens changed on ``db``: bump the generation once the
    transaction commits (at once outside a transaction)."""
    if db.conn.in_transaction:
        setattr(db, _PENDING, True)
    else:
        bump(stamp_path(_db_path(db)))


def after_commit(db: Database) -> None:
    """Called by ``write_transaction`` after COMMIT."""
    if getattr(db, _PENDING, False):
        setattr(db, _PENDING, False)
        bump(stamp_path(_db_path(db)))


def after_rollback(db: Database) -> None:
    setattr(db, _PENDING, False)

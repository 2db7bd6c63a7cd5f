"""The access generation: a stamp file beside the catalog whose mtime changes (after commit)
whenever channels, members, users or tokens change, in any process.

Readers keep in-memory snapshots (the channel map, verified tokens) and check the stamp with
one ``stat()`` per request: a change committed by another process (another worker, the CLI)
is seen on the next request, without a catalog query per request.

Ordering makes this correct across processes: a writer bumps the stamp only after its
transaction committed, and a reader reads the stamp *before* it reloads, so a snapshot is
never newer-stamped than the data it holds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlite_utils import Database

from repoproxy.storage.store import atomic_write

#: the attribute of a Database marking "bump after this transaction commits"
_PENDING = "_repoproxy_access_changed"


def stamp_path(catalog_path: Path) -> Path:
    return catalog_path.with_name(catalog_path.name + ".generation")


def read_stamp(path: Path | str) -> int:
    """The current generation (0 before the first change); one stat, no open."""
    try:
        return os.stat(path).st_mtime_ns  # noqa: PTH116 (hot path: str paths)
    except FileNotFoundError:
        return 0


def bump(path: Path) -> None:
    """Move the generation forward: a new mtime, strictly later than the last one."""
    try:
        old = path.stat().st_mtime_ns
    except FileNotFoundError:
        old = 0
        atomic_write(path, b"access generation: its mtime changes on every change\n",
                     sync_dir=False)
    # an explicit nanosecond time: two changes within one clock tick still differ
    stamp = max(time.time_ns(), old + 1)
    try:
        os.utime(path, ns=(stamp, stamp))
    except PermissionError:  # made by another user (the CLI as root): replace it, then stamp
        atomic_write(path, b"access generation: its mtime changes on every change\n",
                     sync_dir=False)
        os.utime(path, ns=(stamp, stamp))


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

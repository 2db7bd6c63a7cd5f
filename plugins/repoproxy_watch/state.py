"""What the watch folder did, kept in the catalog (its own migration set), and the status
report that `GET /api/v1/watch` and `repoproxy watch --status` show, with or without a
running worker.
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database, Migrations

from repoproxy.storage.catalog import utcnow
from repoproxy.storage.db import write_transaction

from .config import WatchConfig
from .folder import channel_folders, scan

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

migrations = Migrations("repoproxy_watch")

COUNTERS = ("processed", "already_present", "rejected", "batches", "rebuilds")


@migrations()
def m001_watch_status(db: Database) -> None:
    db.table("watch_status").create(
        {
            "id": int,
            **dict.fromkeys(COUNTERS, int),
            "last_error": str,
            "last_error_file": str,
            "last_error_at": str,
            "last_batch_at": str,
            "started_at": str,
            "pid": int,
        },
        pk="id",
        defaults=dict.fromkeys(COUNTERS, 0),
    )


@dataclass
class Delta:
    """Counts to add to the catalog's totals, gathered over one round of the worker."""

    counts: Counter[str] = field(default_factory=Counter)
    last_error: tuple[str, str] | None = None  # (file, message)
    batch: bool = False

    def error(self, file: str, message: str) -> None:
        self.last_error = (file, message)

    def __bool__(self) -> bool:
        return bool(self.counts) or self.last_error is not None or self.batch


def _ensure_row(db: Database) -> None:
    db.execute("INSERT OR IGNORE INTO watch_status (id) VALUES (1)")


def save(db: Database, delta: Delta) -> None:
    if not delta:
        return
    sets = [f"{name} = {name} + ?" for name in COUNTERS]
    args: list[Any] = [delta.counts.get(name, 0) for name in COUNTERS]
    if delta.batch:
        sets.append("last_batch_at = ?")
        args.append(utcnow())
    if delta.last_error is not None:
        sets += ["last_error_file = ?", "last_error = ?", "last_error_at = ?"]
        args += [*delta.last_error, utcnow()]
    with write_transaction(db):
        _ensure_row(db)
        db.execute(f"UPDATE watch_status SET {', '.join(sets)} WHERE id = 1", args)  # noqa: S608 - column names are constants


def mark_started(db: Database) -> None:
    with write_transaction(db):
        _ensure_row(db)
        db.execute("UPDATE watch_status SET started_at = ?, pid = ? WHERE id = 1",
                   [utcnow(), os.getpid()])


def totals(db: Database) -> dict[str, Any]:
    row = db.execute(
        f"SELECT {', '.join(COUNTERS)}, last_error, last_error_file, last_error_at, "  # noqa: S608
        "last_batch_at, started_at, pid FROM watch_status WHERE id = 1").fetchone()
    names = [*COUNTERS, "last_error", "last_error_file", "last_error_at", "last_batch_at",
             "started_at", "pid"]
    values = dict(zip(names, row, strict=True)) if row else dict.fromkeys(COUNTERS, 0)
    return {n: values.get(n) for n in names} | {n: values.get(n) or 0 for n in COUNTERS}


# --- the one-worker-per-root lock -----------------------------------------------------------
def try_lock(config: WatchConfig) -> int | None:
    """Take the root's lock (a file descriptor to keep open), or None if a worker has it."""
    config.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(config.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def worker_running(config: WatchConfig) -> bool:
    try:
        fd = os.open(config.lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False


# --- the report -------------------------------------------------------------------------
def status(services: Core, config: WatchConfig) -> dict[str, Any]:
    """Folders watched, files pending, processed and rejected totals, the last error."""
    catalog = services.catalog()
    channels = {ch.name for ch in catalog.list_channels()}
    pending: Counter[str | None] = Counter(c.channel for c in scan(config))
    folders = [
        {"channel": name, "path": str(config.root / name), "channel_exists": name in channels,
         "pending": pending.get(name, 0)}
        for name in channel_folders(config)
    ]
    t = totals(services.db())
    last_error = None
    if t["last_error"]:
        last_error = {"file": t["last_error_file"], "error": t["last_error"],
                      "at": t["last_error_at"]}
    return {
        "root": str(config.root),
        "running": worker_running(config),
        "folders": folders,
        "pending": sum(pending.values()),
        "processed": t["processed"],
        "already_present": t["already_present"],
        "rejected": t["rejected"],
        "batches": t["batches"],
        "repodata_builds": t["rebuilds"],
        "last_batch_at": t["last_batch_at"],
        "started_at": t["started_at"],
        "last_error": last_error,
        "rejected_dir": str(config.rejected_dir),
        "settings": {
            "quiet_seconds": config.quiet_seconds,
            "duplicates": config.duplicates,
            "create_channels": config.create_channels,
            "create_privacy": config.create_privacy,
            "processed_dir": str(config.processed_dir) if config.processed_dir else None,
            "batch_size": config.batch_size,
            "workers": config.workers,
        },
    }

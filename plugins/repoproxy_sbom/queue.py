"""The SBOM queue: a plugin-owned catalog table drained by a background worker.

Building a CycloneDX document costs far more than ingesting the file, so the publish path only
enqueues a row (``repoproxy_packages_added`` runs right after the package's transaction
commits). The worker (``repoproxy serve``) drains the queue every
``repoproxy_sbom.worker_interval`` seconds; a failed build is retried with exponential backoff
up to ``repoproxy_sbom.max_attempts`` times. Rows of files or channels that are gone are
dropped. Nothing is lost if the process dies between commit and enqueue: the worker's first
pass re-scans the catalog and enqueues every file that has no SBOM on disk. The SBOM endpoint
builds a missing document on demand and dequeues it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Migrations

from repoproxy.domain.periodic import PeriodicWorker
from repoproxy.storage.db import write_transaction

log = logging.getLogger("repoproxy_sbom")

migrations = Migrations("repoproxy_sbom")

BACKOFF_BASE = 2.0  # seconds before the first retry; doubles with every failed attempt
BACKOFF_MAX = 300.0


@migrations()
def m001_queue(db: Any) -> None:
    db.table("sbom_queue").create(
        {"channel": str, "subdir": str, "filename": str, "sha256": str, "attempts": int,
         "last_error": str, "enqueued_at": str, "next_try": float},
        pk=("channel", "subdir", "filename"),
    )
    db.table("sbom_queue").create_index(["next_try"])


def enqueue_many(services: Any, files: list[tuple[str, str, str, str]]) -> None:
    """Queue (or re-queue, fresh) the SBOMs of ``(channel, subdir, filename, sha256)``, in
    one transaction."""
    if not files:
        return
    db = services.db()
    now = datetime.now(UTC).isoformat()
    with write_transaction(db):
        db.conn.executemany(
            "INSERT OR REPLACE INTO sbom_queue (channel, subdir, filename, sha256, attempts, "
            "last_error, enqueued_at, next_try) VALUES (?, ?, ?, ?, 0, NULL, ?, 0)",
            [(*f, now) for f in files])


def dequeue(services: Any, channel: str, subdir: str, filename: str) -> None:
    db = services.db()
    with write_transaction(db):
        db.execute("DELETE FROM sbom_queue WHERE channel = ? AND subdir = ? AND filename = ?",
                   [channel, subdir, filename])


def forget_channel(services: Any, channel: str) -> None:
    db = services.db()
    with write_transaction(db):
        db.execute("DELETE FROM sbom_queue WHERE channel = ?", [channel])


def pending(services: Any) -> int:
    return int(services.db().execute("SELECT COUNT(*) FROM sbom_queue").fetchone()[0])


def rescan(services: Any) -> int:
    """Enqueue every catalog file that has neither an SBOM on disk nor a queue row (files of a
    process that died between commit and enqueue, or from before the plugin was enabled)."""
    from . import sbom_path

    db = services.db()
    queued = {tuple(r) for r in db.execute(
        "SELECT channel, subdir, filename FROM sbom_queue").fetchall()}
    missing = [(c, s, f, h) for c, s, f, h in db.execute(
        "SELECT channel, subdir, filename, sha256 FROM packages").fetchall()
        if (c, s, f) not in queued and not sbom_path(services, c, s, f).exists()]
    if missing:
        now = datetime.now(UTC).isoformat()
        with write_transaction(db):
            db.conn.executemany(
                "INSERT OR IGNORE INTO sbom_queue (channel, subdir, filename, sha256, attempts, "
                "last_error, enqueued_at, next_try) VALUES (?, ?, ?, ?, 0, NULL, ?, 0)",
                [(*m, now) for m in missing])
    return len(missing)


def build_one(services: Any, channel: str, subdir: str, filename: str) -> bool:
    """Build and store one file's SBOM and drop its queue row; a file (or channel) that is gone
    only loses its row. Raises if the build fails (the row stays, for the caller to retry)."""
    from . import write_sbom

    rec = services.catalog().get_package(channel, subdir, filename)
    if rec is not None:
        write_sbom(services, rec, services.store.package_path(channel, subdir, filename))
    dequeue(services, channel, subdir, filename)
    return rec is not None


def drain(services: Any, max_attempts: int, limit: int | None = None) -> int:
    """Build the due queued SBOMs (all of them, or ``limit``); returns how many rows were
    handled (built, dropped or failed: a failed row is not due again before its backoff).
    A failure records its error and the time of the next try; after ``max_attempts`` the row
    stays (last_error says why) and is no longer tried until the file is re-queued."""
    db = services.db()
    rows = db.execute(
        "SELECT channel, subdir, filename, attempts FROM sbom_queue "
        "WHERE next_try <= ? AND attempts < ? ORDER BY enqueued_at LIMIT ?",
        [time.time(), max_attempts, limit or -1]).fetchall()  # LIMIT -1: no limit
    for channel, subdir, filename, attempts in rows:
        try:
            build_one(services, channel, subdir, filename)
        except Exception as exc:  # one bad file must not stop the others
            log.warning("SBOM of %s/%s/%s failed (attempt %d): %s", channel, subdir, filename,
                        attempts + 1, exc)
            delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** attempts)
            with write_transaction(db):
                db.execute(
                    "UPDATE sbom_queue SET attempts = attempts + 1, last_error = ?, "
                    "next_try = ? WHERE channel = ? AND subdir = ? AND filename = ?",
                    [str(exc)[:500], time.time() + delay, channel, subdir, filename])
    return len(rows)


class SbomWorker(PeriodicWorker):
    """Re-scans once at start, then drains the queue every ``interval`` seconds."""

    name = "repoproxy_sbom-worker"
    join_timeout = 5.0

    def __init__(self, services: Any, interval: float, max_attempts: int) -> None:
        super().__init__(interval, immediately=True)
        self.services = services
        self.max_attempts = max_attempts
        self._scanned = False

    def tick(self) -> None:
        if not self._scanned:
            self._scanned = True  # once per start; a failed scan is retried at the next one
            found = rescan(self.services)
            if found:
                log.info("%d package files had no SBOM; queued", found)
            # the queue is drained from the next tick on, one interval after the start: a
            # server started with a long interval (a paused queue, as bench/ingest.py's) does
            # not build a big import's backlog at once, beside its first requests
            return
        # in batches, so stop() is honoured within one batch
        while not self.stopping.is_set() and drain(self.services, self.max_attempts, 50):
            pass

    def __repr__(self) -> str:
        return f"<repoproxy_sbom SbomWorker every {self.interval}s>"

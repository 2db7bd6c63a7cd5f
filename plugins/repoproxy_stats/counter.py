"""Download counting: an in-memory buffer on the hot path, batched writes off it.

``repoproxy_file_served`` only increments a dict entry under a lock (no I/O, no query). A
background worker flushes the buffer every ``repoproxy_stats.flush_interval`` seconds (2 by
default) in one short write transaction, and once more on ``stop()`` (clean shutdown loses
nothing). A crash (SIGKILL, power loss) loses at most the downloads of the last flush
interval: the buffer since the last flush, never anything already committed. Readers (API,
reports, badges) flush first, so what they show is exact on a single server process.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlite_utils import Migrations

from repoproxy.domain.periodic import PeriodicWorker
from repoproxy.storage.db import write_transaction

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


migrations = Migrations("repoproxy_stats")

Key = tuple[str, str, str, str, str]  # day, channel, subdir, filename, who


@migrations()
def m001_downloads(db: Any) -> None:
    db.table("stats_downloads").create(
        {"day": str, "channel": str, "subdir": str, "filename": str, "who": str,
         "name": str, "version": str, "count": int},
        pk=("day", "channel", "subdir", "filename", "who"),
    )
    db.table("stats_downloads").create_index(["channel", "subdir", "filename"])


def split_filename(filename: str) -> tuple[str, str]:
    stem = filename.removesuffix(".conda").removesuffix(".tar.bz2")
    parts = stem.rsplit("-", 2)
    return (parts[0], parts[1]) if len(parts) == 3 else (stem, "")


class DownloadBuffer:
    """Counts since the last flush, keyed by day, file and identity."""

    def __init__(self, services: Core) -> None:
        self.services = services
        self._counts: Counter[Key] = Counter()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._day, self._day_ends = "", 0.0

    def add(self, channel: str, subdir: str, filename: str, who: str) -> None:
        # the hot path: one dict increment under a lock; the day string is cached
        now = time.time()
        if now >= self._day_ends:
            self._roll_day(now)
        with self._lock:
            self._counts[(self._day, channel, subdir, filename, who)] += 1

    def _roll_day(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC).date()
        self._day = today.isoformat()
        self._day_ends = (int(now) // 86400 + 1) * 86400.0

    def pending(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def forget(self, channel: str) -> None:
        """Drop the buffered counts of a channel (it was removed)."""
        with self._lock:
            for key in [k for k in self._counts if k[1] == channel]:
                del self._counts[key]

    def flush(self) -> int:
        """Write the buffered counts in one transaction; returns how many downloads."""
        with self._flush_lock:
            with self._lock:
                if not self._counts:
                    return 0
                batch, self._counts = self._counts, Counter()
            try:
                db = self.services.db()
                with write_transaction(db):
                    db.conn.executemany(
                        "INSERT INTO stats_downloads "
                        "(day, channel, subdir, filename, who, name, version, count) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (day, channel, subdir, filename, who) "
                        "DO UPDATE SET count = count + excluded.count",
                        [(*key, *split_filename(key[3]), n) for key, n in batch.items()],
                    )
            except Exception:
                with self._lock:  # put them back: the next flush retries
                    self._counts.update(batch)
                raise
            return sum(batch.values())


def buffer_for(services: Core) -> DownloadBuffer:
    """The buffer of one server root, created on first use."""
    return services.plugin_state("repoproxy_stats.buffer", lambda: DownloadBuffer(services))


class FlushWorker(PeriodicWorker):
    """Flushes the buffer every ``interval`` seconds, and a last time on stop()."""

    name = "repoproxy_stats-flush"
    join_timeout = 5.0

    def __init__(self, services: Core, interval: float) -> None:
        super().__init__(interval)
        self.buffer = buffer_for(services)

    def tick(self) -> int:
        return self.buffer.flush()

    def finish(self) -> None:
        self.buffer.flush()

    def __repr__(self) -> str:
        return f"<repoproxy_stats FlushWorker every {self.interval}s>"


def forget_channel(services: Core, channel: str) -> None:
    """A removed channel's counts go, buffered and stored: a channel created later under the
    same name starts from zero."""
    buffer = buffer_for(services)
    buffer.forget(channel)
    db = services.db()
    with buffer._flush_lock, write_transaction(db):  # not racing a flush of that channel
        db.execute("DELETE FROM stats_downloads WHERE channel = ?", [channel])


def file_downloads(services: Core, channel: str, subdir: str, filename: str) -> int:
    buffer_for(services).flush()
    row = services.db().execute(
        "SELECT COALESCE(SUM(count), 0) FROM stats_downloads "
        "WHERE channel = ? AND subdir = ? AND filename = ?", [channel, subdir, filename]
    ).fetchone()
    return int(row[0])


def channel_totals(services: Core, channel: str,
                   exclude: Collection[tuple[str, str]] = ()) -> dict[str, Any]:
    """Downloads of the channel's files, leaving out ``exclude`` ((subdir, filename) pairs:
    the files its policy hides)."""
    buffer_for(services).flush()
    db = services.db()
    files = [row for row in db.execute(
        "SELECT subdir, filename, SUM(count) FROM stats_downloads WHERE channel = ? "
        "GROUP BY subdir, filename ORDER BY subdir, filename", [channel]).fetchall()
        if (row[0], row[1]) not in exclude]
    packages: Counter[str] = Counter()
    for _, filename, n in files:
        packages[split_filename(filename)[0]] += n
    return {
        "channel": channel,
        "downloads": sum(n for *_, n in files),
        "packages": dict(sorted(packages.items())),
        "files": [{"subdir": s, "filename": f, "downloads": n} for s, f, n in files],
    }


REPORT_COLUMNS = ("when", "who", "channel", "subdir", "file", "package", "version", "count")


REPORT_SQL = (
    "SELECT day, who, channel, subdir, filename, name, version, count FROM stats_downloads "
    "WHERE {where} ORDER BY day, channel, subdir, filename, who"
)


def report_rows(services: Core, date_from: str, date_to: str, users: list[str],
                channels: list[str]) -> list[dict[str, Any]]:
    buffer_for(services).flush()
    where, args = ["day >= ?", "day <= ?"], [date_from, date_to]
    if users:
        where.append(f"who IN ({','.join('?' * len(users))})")
        args += users
    if channels:
        where.append(f"channel IN ({','.join('?' * len(channels))})")
        args += channels
    # only placeholders are joined in; every value is a bound parameter
    sql = REPORT_SQL.format(where=" AND ".join(where))
    rows = services.db().execute(sql, args).fetchall()
    return [dict(zip(REPORT_COLUMNS, r, strict=True)) for r in rows]

"""Failed-login counts shared by every process serving one root (``<root>/throttle.db``).

``repoproxy serve --workers N`` runs N processes; counts kept in each process's memory would
give a password guesser N times the budget. The counts live in a small SQLite file of their
own rather than in the catalog: a flood of wrong passwords then never queues behind (or
holds up) the catalog's write lock, and the file can be deleted at any time to clear every
lockout.

Each key (``addr:<address>`` or ``user:<name>``, chosen by the caller) is stored as its
SHA-256 digest, so a row has a fixed size whatever a client sends, and a fixed window: the
first failure opens it, later failures in it only count. Rows whose window has ended are
deleted as failures arrive, and the table never holds more than ``max_rows`` rows (the
windows that end soonest go first), so the file stays small under any flood.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from repoproxy.storage.db import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    key BLOB PRIMARY KEY,
    count INTEGER NOT NULL,
    until REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS failures_until ON failures (until);
"""
#: failures recorded (by one process) between two checks of the row bound
TRIM_EVERY = 256


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:16]


class FailureLog:
    """Counts of failures per key in fixed windows, in one SQLite file.

    Times are wall-clock seconds from the caller (processes share them); a window ends at
    ``first failure + window``.
    """

    def __init__(self, path: Path, max_rows: int) -> None:
        self.path = path
        self.max_rows = max_rows
        self._local = threading.local()
        self._lock = threading.Lock()
        self._added = 0
        self._all: list[sqlite3.Connection] = []

    def _conn(self) -> sqlite3.Connection:
        # a connection is never used across a fork (serve --workers forks its processes)
        pid, conn = getattr(self._local, "conn", (0, None))
        if conn is None or pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path).conn
            # a lost count costs little; a login waiting on a disk flush costs a thread
            conn.execute("PRAGMA synchronous=OFF")
            conn.executescript(SCHEMA)
            self._local.conn = (os.getpid(), conn)
            with self._lock:
                self._all.append(conn)
        return conn

    def counts(self, keys: Iterable[str], now: float) -> dict[str, tuple[int, float]]:
        """key -> (failures, window end) for the keys whose window is open at ``now``."""
        wanted = {_digest(k): k for k in keys}
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._conn().execute(  # only placeholders are formatted in
            f"SELECT key, count, until FROM failures WHERE key IN ({marks}) AND until > ?",  # noqa: S608
            (*wanted, now)).fetchall()
        return {wanted[key]: (count, until) for key, count, until in rows}

    def add(self, keys: Iterable[str], now: float, window: float) -> None:
        """Count one failure against each key; a key whose window has ended starts a new one."""
        conn = self._conn()
        with self._lock:
            self._added += 1
            trim = self._added % TRIM_EVERY == 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO failures (key, count, until) VALUES (?, 1, ?) "
                "ON CONFLICT (key) DO UPDATE SET "
                "count = CASE WHEN until > ? THEN count + 1 ELSE 1 END, "
                "until = CASE WHEN until > ? THEN until ELSE excluded.until END",
                [(_digest(k), now + window, now, now) for k in keys])
            conn.execute("DELETE FROM failures WHERE until <= ?", (now,))
            if trim:
                conn.execute(
                    "DELETE FROM failures WHERE key IN (SELECT key FROM failures "
                    "ORDER BY until LIMIT max(0, (SELECT count(*) FROM failures) - ?))",
                    (self.max_rows,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def rows(self) -> int:
        """How many keys are tracked (for tests and diagnostics)."""
        return int(self._conn().execute("SELECT count(*) FROM failures").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

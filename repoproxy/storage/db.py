"""SQLite connections: WAL, busy timeout, foreign keys; explicit short write transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database


def connect(path: Path) -> Database:
    # isolation_level=None: we issue BEGIN ourselves so that write transactions are
    # BEGIN IMMEDIATE (take the write lock up front: no deadlock on upgrade) and short.
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across app crashes
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    return Database(conn)


class ConnectionPool:
    """One connection per thread (sqlite3 connections are cheap but not thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()

    def get(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.conn.close()
            self._all.clear()
        self._local = threading.local()


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    from repoproxy.storage.generation import after_commit, after_rollback

    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        after_rollback(db)
        raise
    db.execute("COMMIT")
    # snapshots in every process see the change once it is committed, not before
    after_commit(db)


@contextmanager
def read_snapshot(db: Database) -> Iterator[Database]:
    """BEGIN ... COMMIT around reads that must agree with one another: in WAL mode the first
    read fixes one snapshot of the database for all of them, so a commit made meanwhile by
    another connection is seen by none of them or (after) by all. Inside a transaction
    already, that transaction is the snapshot."""
    if db.conn.in_transaction:
        yield db
        return
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")

"""The mirror plugin's tables (``Migrations("repoproxy_mirror")``) and their only SQL.

``mirrors``: one row per mirror definition, its state and last run. ``mirror_files``: the files
an active mirror put into its channel (so that it only ever removes its own), with the moment
the upstream stopped offering each (``missing_since``) for the retention period.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlite_utils import Database, Migrations

from repoproxy.errors import Conflict, NotFound
from repoproxy.storage.db import write_transaction

from .model import FILTER_KEYS, Mirror

migrations = Migrations("repoproxy_mirror")
Audit = Callable[[Database], None]

_BOOLS = ("use_channel_policy", "exclude_uncurated_cve_packages", "only_spec_dependencies")
_JSON = ("subdirs", "only_specs", "exclude_specs", "include_specs", "licenses", "counts")
_COLUMNS = ("id", "name", "channel", "mode", "type", "source", "cron", "use_channel_policy",
            "policy_id", "state", "created", "updated", "last_run_at", "last_error",
            *FILTER_KEYS, "counts")


@migrations()
def m001_mirrors(db: Database) -> None:
    db.table("mirrors").create(
        {"id": str, "name": str, "channel": str, "mode": str, "type": str, "source": str,
         "cron": str, "use_channel_policy": int, "policy_id": str, "state": str,
         "created": str, "updated": str, "last_run_at": str, "last_error": str,
         "subdirs": str, "only_specs": str, "exclude_specs": str, "include_specs": str,
         "licenses": str, "cve_score": float, "exclude_uncurated_cve_packages": int,
         "date_from": str, "date_to": str, "counts": str}, pk="id",
    )
    db.table("mirrors").create_index(["name"], unique=True)
    db.table("mirrors").create_index(["channel"])
    db.table("mirror_files").create(
        {"mirror_id": str, "subdir": str, "filename": str, "sha256": str,
         "missing_since": float}, pk=("mirror_id", "subdir", "filename"),
    )


@migrations()
def m002_only_spec_dependencies(db: Database) -> None:
    db.table("mirrors").add_column("only_spec_dependencies", int, not_null_default=0)


def _row(m: Mirror) -> dict[str, Any]:
    data = {k: getattr(m, k) for k in _COLUMNS}
    for k in _JSON:
        data[k] = json.dumps(data[k])
    for k in _BOOLS:
        data[k] = int(bool(data[k]))
    return data


def _mirror(row: dict[str, Any]) -> Mirror:
    data = {k: row[k] for k in _COLUMNS}
    for k in _JSON:
        data[k] = json.loads(row[k] or ("{}" if k == "counts" else "[]"))
    for k in _BOOLS:
        data[k] = bool(row[k])
    return Mirror(**data)


class MirrorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- definitions ---------------------------------------------------------------------
    def insert(self, mirror: Mirror, audit: Audit | None = None) -> None:
        with write_transaction(self.db):
            if self.find(mirror.name) is not None:
                raise Conflict(f"mirror {mirror.name!r} already exists")
            self.db.table("mirrors").insert(_row(mirror))
            if audit is not None:
                audit(self.db)

    def save(self, mirror: Mirror, audit: Audit | None = None) -> None:
        with write_transaction(self.db):
            self.db.table("mirrors").update(mirror.id, _row(mirror))
            if audit is not None:
                audit(self.db)

    def set_fields(self, mirror_id: str, **fields: Any) -> None:
        """A short write of run bookkeeping (state, counts, last error)."""
        for k in _JSON:
            if k in fields:
                fields[k] = json.dumps(fields[k])
        with write_transaction(self.db):
            self.db.table("mirrors").update(mirror_id, fields)

    def set_state_if(self, mirror_id: str, new: str, allowed: Iterable[str]) -> bool:
        """Compare-and-set of the state: True if it was one of ``allowed``."""
        allowed = list(allowed)
        marks = ", ".join("?" for _ in allowed)
        with write_transaction(self.db):
            cur = self.db.execute(
                f"UPDATE mirrors SET state = ? WHERE id = ? AND state IN ({marks})",  # noqa: S608
                [new, mirror_id, *allowed])
            return bool(cur.rowcount)

    def delete(self, mirror: Mirror, audit: Audit | None = None) -> None:
        with write_transaction(self.db):
            self.db.execute("DELETE FROM mirror_files WHERE mirror_id = ?", [mirror.id])
            self.db.execute("DELETE FROM mirrors WHERE id = ?", [mirror.id])
            if audit is not None:
                audit(self.db)

    def find(self, name: str) -> Mirror | None:
        rows = list(self.db.table("mirrors").rows_where("name = ?", [name]))
        return _mirror(rows[0]) if rows else None

    def get(self, name: str, channel: str | None = None) -> Mirror:
        mirror = self.find(name)
        if mirror is None or (channel is not None and mirror.channel != channel):
            where = f" in channel {channel!r}" if channel else ""
            raise NotFound(f"mirror {name!r} not found{where}")
        return mirror

    def by_id(self, mirror_id: str) -> Mirror | None:
        rows = list(self.db.table("mirrors").rows_where("id = ?", [mirror_id]))
        return _mirror(rows[0]) if rows else None

    def state_of(self, mirror_id: str) -> str | None:
        """The mirror's state (None: deleted), in one query: a run asks it between two files
        (through sqlite-utils' table helpers, three queries: an eighth of a run's own time)."""
        row = self.db.execute("SELECT state FROM mirrors WHERE id = ?", [mirror_id]).fetchone()
        return None if row is None else str(row[0])

    def list(self, channel: str | None = None) -> list[Mirror]:
        if channel is None:
            rows = self.db.table("mirrors").rows_where(order_by="name")
        else:
            rows = self.db.table("mirrors").rows_where("channel = ?", [channel],
                                                        order_by="name")
        return [_mirror(r) for r in rows]

    def count(self, channel: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM mirrors WHERE channel = ?",
                                   [channel]).fetchone()[0])

    # --- files an active mirror placed ----------------------------------------------------
    def files(self, mirror_id: str, subdir: str) -> dict[str, tuple[str, float | None]]:
        cur = self.db.execute("SELECT filename, sha256, missing_since FROM mirror_files "
                              "WHERE mirror_id = ? AND subdir = ?", [mirror_id, subdir])
        return {fn: (sha, missing) for fn, sha, missing in cur}

    def add_files(self, mirror_id: str, subdir: str, files: Iterable[tuple[str, str]]) -> None:
        with write_transaction(self.db):
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO mirror_files (mirror_id, subdir, filename, sha256, "
                "missing_since) VALUES (?, ?, ?, ?, NULL)",
                [(mirror_id, subdir, fn, sha) for fn, sha in files])

    def set_missing(self, mirror_id: str, subdir: str, names: Iterable[str],
                    since: float | None) -> None:
        with write_transaction(self.db):
            self.db.conn.executemany(
                "UPDATE mirror_files SET missing_since = ? WHERE mirror_id = ? AND subdir = ? "
                "AND filename = ?", [(since, mirror_id, subdir, fn) for fn in names])

    def forget_files(self, mirror_id: str, subdir: str, names: Iterable[str]) -> None:
        with write_transaction(self.db):
            self.db.conn.executemany(
                "DELETE FROM mirror_files WHERE mirror_id = ? AND subdir = ? AND filename = ?",
                [(mirror_id, subdir, fn) for fn in names])

"""The catalog: the only SQL for the core tables. Callers hold the write transaction."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from repoproxy.errors import NotFound
from repoproxy.models import Channel, PackageRecord, Privacy
from repoproxy.storage.generation import access_changed

CHANNEL_KEYS = ("name", "description", "privacy", "created", "incarnation")
CHANNEL_COLUMNS = ", ".join(CHANNEL_KEYS)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _channel(row: dict[str, Any]) -> Channel:
    return Channel(
        name=row["name"],
        description=row["description"] or "",
        privacy=Privacy(row["privacy"]),
        created=row["created"] or "",
        incarnation=row["incarnation"] or "",  # NULL: a row inserted by hand
    )


#: files per query of :meth:`Catalog.listing_facts` (two bound values each)
FACTS_BATCH = 400


def _text(value: Any) -> str:
    """A JSON value extracted by SQLite as listings show it: text, "" when absent or null
    (a non-string, which no real package has, as its JSON text)."""
    if value is None or value == "":
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _record(row: dict[str, Any]) -> PackageRecord:
    return PackageRecord(
        channel=row["channel"],
        subdir=row["subdir"],
        filename=row["filename"],
        name=row["name"],
        version=row["version"],
        build=row["build"],
        build_number=row["build_number"],
        size=row["size"],
        sha256=row["sha256"],
        md5=row["md5"],
        indexed_timestamp=row["indexed_timestamp"],
        record=json.loads(row["record"]),
        about=json.loads(row["about"] or "{}"),
        run_exports=json.loads(row["run_exports"]) if row["run_exports"] else None,
        uploader=row["uploader"],
        uploaded_at=row["uploaded_at"] or "",
    )


_UPSERT_PACKAGE = """
INSERT INTO packages (channel, subdir, filename, name, version, build, build_number, size,
    sha256, md5, indexed_timestamp, record, about, run_exports, uploader, uploaded_at,
    file_ino, file_mtime_ns)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (channel, subdir, filename) DO UPDATE SET
    name = excluded.name, version = excluded.version, build = excluded.build,
    build_number = excluded.build_number, size = excluded.size, sha256 = excluded.sha256,
    md5 = excluded.md5, indexed_timestamp = excluded.indexed_timestamp, record = excluded.record,
    about = excluded.about, run_exports = excluded.run_exports, uploader = excluded.uploader,
    uploaded_at = excluded.uploaded_at, file_ino = excluded.file_ino,
    file_mtime_ns = excluded.file_mtime_ns
"""


def _file_filter(channel: str, subdir: str | None, *, name: str | None = None,
                 after: tuple[str, str] | None = None) -> tuple[str, list[str]]:
    """The WHERE clause and its values selecting a channel's files: of one subdir, of one
    package name, after (subdir, filename) in the primary key's order (each when given)."""
    where, args = ["channel = ?"], [channel]
    if subdir is not None:
        where.append("subdir = ?")
        args.append(subdir)
    if name is not None:
        where.append("name = ?")
        args.append(name)
    if after is not None:
        where.append("(subdir, filename) > (?, ?)")
        args.extend(after)
    return " AND ".join(where), args


class Catalog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ping(self) -> None:
        """One trivial query: the database answers (the health check)."""
        self.db.execute("SELECT 1").fetchone()

    # --- channels ---------------------------------------------------------------------
    def get_channel(self, name: str) -> Channel | None:
        row = self.db.execute(
            f"SELECT {CHANNEL_COLUMNS} FROM channels WHERE name = ?", [name]  # noqa: S608
        ).fetchone()
        if row is None:
            return None
        return _channel(dict(zip(CHANNEL_KEYS, row, strict=True)))

    def find_channel(self, name: str) -> Channel | None:
        """``get_channel`` at the same cost whether the channel exists or not.

        For access checks (a channel the caller may not read must not be told from an absent
        one by the time it takes): one table row is always read and decoded, the named one or,
        when it is absent, the first one; only the answer differs.
        """
        row = self.db.execute(
            f"SELECT {CHANNEL_COLUMNS}, name = ?1 FROM channels WHERE rowid = "  # noqa: S608
            "COALESCE((SELECT rowid FROM channels WHERE name = ?1), "
            "(SELECT MIN(rowid) FROM channels))",
            [name],
        ).fetchone()
        if row is None:  # no channel at all: nothing to hide
            return None
        channel = _channel(dict(zip(CHANNEL_KEYS, row[:-1], strict=True)))
        return channel if row[-1] else None

    def require_channel(self, name: str) -> Channel:
        ch = self.get_channel(name)
        if ch is None:
            raise NotFound(f"channel {name!r} does not exist")
        return ch

    def list_channels(self) -> list[Channel]:
        return [_channel(r) for r in self.db.table("channels").rows_where(order_by="name")]

    def subchannels(self, parent: str) -> list[Channel]:
        """The subchannels of ``parent`` (rows named ``parent/SUB``), by name."""
        prefix = parent + "/"
        # substr, not LIKE: '_' in a channel name is a LIKE wildcard
        return [_channel(r) for r in self.db.table("channels").rows_where(
            "substr(name, 1, ?) = ?", [len(prefix), prefix], order_by="name")]

    def set_subchannels_privacy(self, parent: str, privacy: str) -> None:
        """A subchannel's privacy follows its parent's (served with the same headers)."""
        prefix = parent + "/"
        self.db.execute("UPDATE channels SET privacy = ? WHERE substr(name, 1, ?) = ?",
                        [privacy, len(prefix), prefix])

    def insert_channel(self, channel: Channel) -> None:
        if not channel.incarnation:  # made by the operation that creates the channel
            raise ValueError(f"channel {channel.name!r} has no incarnation")
        self.db.table("channels").insert({**channel.as_json(),
                                          "incarnation": channel.incarnation})
        self.db.table("subdirs").insert(
            {"channel": channel.name, "subdir": "noarch", "generation": 1, "built": -1}
        )
        access_changed(self.db)

    def update_channel(self, name: str, **fields: Any) -> None:
        self.db.table("channels").update(name, {k: str(v) for k, v in fields.items()})
        access_changed(self.db)

    def delete_channel(self, name: str) -> None:
        for table in ("packages", "subdirs", "dirty_names", "shards", "superseded_shards",
                      "members", "artifacts"):
            self.db.execute(f"DELETE FROM {table} WHERE channel = ?", [name])  # noqa: S608
        self.db.execute("DELETE FROM channels WHERE name = ?", [name])
        access_changed(self.db)

    # --- packages -------------------------------------------------------------------------
    def get_package(self, channel: str, subdir: str, filename: str) -> PackageRecord | None:
        rows = list(
            self.db.table("packages").rows_where(
                "channel = ? AND subdir = ? AND filename = ?", [channel, subdir, filename]
            )
        )
        return _record(rows[0]) if rows else None

    def packages(
        self, channel: str, subdir: str | None = None, name: str | None = None
    ) -> Iterator[PackageRecord]:
        where, args = _file_filter(channel, subdir, name=name)
        for row in self.db.table("packages").rows_where(where, args,
                                                        order_by="subdir, filename"):
            yield _record(row)

    def packages_after(self, channel: str, subdir: str | None,
                       after: tuple[str, str] | None, limit: int) -> list[PackageRecord]:
        """At most ``limit`` files of the channel (or of one subdir) that come after
        ``after`` = (subdir, filename) in (subdir, filename) order: one page of a walk over
        a channel of any size, each page its own short read (the primary key's order)."""
        where, args = _file_filter(channel, subdir, after=after)
        return [_record(row) for row in self.db.table("packages").rows_where(
            where, args, order_by="subdir, filename", limit=limit)]

    def packages_named(self, channel: str, names: Iterable[str]) -> Iterator[PackageRecord]:
        """Every file of the given package names, in one query (a bulk import touches
        thousands of names: a query per name cost seconds)."""
        wanted = json.dumps(sorted(set(names)))
        # sorted here, not by ORDER BY: that would make SQLite walk the whole channel in
        # primary-key order instead of looking the names up in their index (4 ms against
        # 0.02 ms for one name in a channel of 5,000 files)
        cursor = self.db.execute(
            "SELECT * FROM packages WHERE channel = ? AND name IN "
            "(SELECT value FROM json_each(?))", [channel, wanted])
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor]
        rows.sort(key=lambda r: (r["subdir"], r["filename"]))
        for row in rows:
            yield _record(row)

    def search_packages(self, channel: str, q: str
                        ) -> Iterator[tuple[str, str, str, str, str, str | None]]:
        """(subdir, filename, name, version, build, license) of the channel's files whose
        package name contains ``q`` (lower case): light columns, no record decoded, so a
        query matching a whole big channel stays cheap."""
        yield from self.db.execute(
            "SELECT subdir, filename, name, version, build, json_extract(record, '$.license') "
            "FROM packages WHERE channel = ? AND instr(lower(name), ?) > 0 "
            "ORDER BY subdir, filename", [channel, q.lower()])

    def listing_facts(self, channel: str, files: Iterable[tuple[str, str]]
                      ) -> dict[tuple[str, str], tuple[str, str]]:
        """(subdir, filename) -> (the record's license, about.json's summary) of the given
        files, extracted by SQLite (no JSON decoded here), :data:`FACTS_BATCH` at a time."""
        wanted = sorted(set(files))
        out: dict[tuple[str, str], tuple[str, str]] = {}
        for start in range(0, len(wanted), FACTS_BATCH):
            batch = wanted[start:start + FACTS_BATCH]
            marks = ",".join("(?, ?)" for _ in batch)
            rows = self.db.execute(
                "SELECT subdir, filename, json_extract(record, '$.license'), "  # noqa: S608
                f"json_extract(about, '$.summary') FROM packages WHERE channel = ? "
                f"AND (subdir, filename) IN (VALUES {marks})",
                [channel, *(part for pair in batch for part in pair)]).fetchall()
            out.update({(sd, fn): (_text(lic), _text(summary))
                        for sd, fn, lic, summary in rows})
        return out

    def file_summaries(self, channel: str) -> Iterator[tuple[str, str, str, str, int, int]]:
        """(subdir, filename, name, version, build_number, indexed_timestamp) of every file,
        ordered by name (the (channel, name) index) and read as the caller goes: the light
        columns a channel's listing needs, without decoding any JSON or holding every row.
        The caller runs no other query on this connection until it has read them all."""
        yield from self.db.execute(
            "SELECT subdir, filename, name, version, build_number, indexed_timestamp "
            "FROM packages WHERE channel = ? ORDER BY name", [channel])

    def abouts(self, channel: str, files: Iterable[tuple[str, str]]
               ) -> dict[tuple[str, str], dict[str, Any]]:
        """(subdir, filename) -> about.json of the given files, in one query (a listing
        page's summary lines)."""
        wanted = sorted(set(files))
        if not wanted:
            return {}
        marks = ",".join("(?, ?)" for _ in wanted)
        rows = self.db.execute(
            f"SELECT subdir, filename, about FROM packages WHERE channel = ? "  # noqa: S608
            f"AND (subdir, filename) IN (VALUES {marks})",
            [channel, *(part for pair in wanted for part in pair)]).fetchall()
        return {(sd, fn): json.loads(about or "{}") for sd, fn, about in rows}

    def dependency_mentions(self, channel: str, text: str
                            ) -> list[tuple[str, str, str, str, str]]:
        """(subdir, filename, name, version, dependency) for every ``depends`` entry of the
        channel's files that contains ``text`` (lower case): a cheap superset of the entries
        naming a package ``text``, read from the records in SQL without decoding one in Python
        (the package page's dependents)."""
        return [tuple(row) for row in self.db.execute(
            "SELECT p.subdir, p.filename, p.name, p.version, d.value "
            "FROM packages AS p, json_each(p.record, '$.depends') AS d "
            "WHERE p.channel = ? AND d.type = 'text' AND instr(lower(d.value), ?) > 0",
            [channel, text.lower()]).fetchall()]

    def file_counts(self, channel: str) -> dict[str, int]:
        """Stored package files per subdir (subdirs without files are absent)."""
        return dict(self.db.execute(
            "SELECT subdir, COUNT(*) FROM packages WHERE channel = ? GROUP BY subdir", [channel]
        ).fetchall())

    def raw_records(self, channel: str, subdir: str) -> Iterator[tuple[str, str, str]]:
        """(filename, name, record JSON text) of a subdir: the fast path of repodata writing."""
        yield from self.db.execute(
            "SELECT filename, name, record FROM packages WHERE channel = ? AND subdir = ? "
            "ORDER BY filename",
            [channel, subdir],
        )

    def raw_parts(
        self, channel: str, subdir: str, names: Iterable[str] | None = None
    ) -> Iterator[tuple[str, str, str, str | None]]:
        """(filename, name, record JSON, run_exports JSON or None) of a subdir, or of the
        files of some package names only: what the indexer caches between builds."""
        sql = ("SELECT filename, name, record, run_exports FROM packages "
               "WHERE channel = ? AND subdir = ?")
        if names is None:
            yield from self.db.execute(sql, [channel, subdir])
            return
        wanted = sorted(set(names))
        for i in range(0, len(wanted), 500):  # well under SQLite's bound on parameters
            chunk = wanted[i:i + 500]
            yield from self.db.execute(
                f"{sql} AND name IN ({', '.join('?' * len(chunk))})", [channel, subdir, *chunk])

    def raw_parts_sorted(self, channel: str, subdir: str, *, conda: bool
                         ) -> Iterator[tuple[str, str, str, str | None]]:
        """:meth:`raw_parts` of the .conda files (or of the others) of a subdir, by file name
        (the order of a repodata.json section; the primary key's order, nothing sorted)."""
        yield from self.db.execute(
            "SELECT filename, name, record, run_exports FROM packages "
            "WHERE channel = ? AND subdir = ? AND (substr(filename, -6) = '.conda') = ? "
            "ORDER BY filename", [channel, subdir, int(conda)])

    def file_names(self, channel: str, subdir: str) -> Iterator[tuple[str, str]]:
        """(filename, name) of every file of a subdir."""
        yield from self.db.execute(
            "SELECT filename, name FROM packages WHERE channel = ? AND subdir = ?",
            [channel, subdir])

    def count_files(self, channel: str, subdir: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM packages WHERE channel = ? AND subdir = ?",
                              [channel, subdir]).fetchone()
        return int(row[0])

    def raw_run_exports(self, channel: str, subdir: str) -> Iterator[tuple[str, str | None]]:
        """(filename, run_exports JSON text or None) of a subdir, by file name."""
        yield from self.db.execute(
            "SELECT filename, run_exports FROM packages WHERE channel = ? AND subdir = ? "
            "ORDER BY filename",
            [channel, subdir],
        )

    def indexed_timestamp(self, channel: str, subdir: str, filename: str) -> int | None:
        """The stored file's indexed_timestamp (CEP-47), or None if the file is not stored."""
        found = self.stored_files(channel, subdir, [filename]).get(filename)
        return None if found is None else found[0]

    def stored_files(self, channel: str, subdir: str,
                     filenames: Iterable[str]) -> dict[str, tuple[int, str]]:
        """Which of ``filenames`` the subdir stores: filename -> (indexed_timestamp, sha256).
        One query per few hundred names (a bulk import's commit and the watch folder's asked
        once per file)."""
        names = list(filenames)
        out: dict[str, tuple[int, str]] = {}
        for start in range(0, len(names), 500):  # below SQLite's bound on parameters
            part = names[start:start + 500]
            marks = ",".join("?" * len(part))  # placeholders only: the names are parameters
            sql = f"SELECT filename, indexed_timestamp, sha256 FROM packages WHERE channel = ? AND subdir = ? AND filename IN ({marks})"  # noqa: E501, S608
            out.update((fn, (int(ts or 0), sha)) for fn, ts, sha in self.db.conn.execute(
                sql, [channel, subdir, *part]))
        return out

    def upsert_package(self, rec: PackageRecord, file_ino: int, file_mtime_ns: int) -> None:
        self.upsert_packages([(rec, file_ino, file_mtime_ns)])

    def upsert_packages(self, rows: Iterable[tuple[PackageRecord, int, int]]) -> None:
        """Insert or replace rows (record, file inode, file mtime_ns); each subdir they touch
        moves on one generation, with their names dirty."""
        # plain SQL, not sqlite_utils' upsert: that one introspects the table on every call,
        # which was a third of a bulk import's commit time; one executemany and one touch per
        # subdir for a batch (per row, they were a fifth of a bulk import's commit)
        touched: dict[tuple[str, str], set[str]] = {}
        params = []
        for rec, file_ino, file_mtime_ns in rows:
            params.append((
                rec.channel, rec.subdir, rec.filename, rec.name, rec.version, rec.build,
                rec.build_number, rec.size, rec.sha256, rec.md5, rec.indexed_timestamp,
                json.dumps(rec.record, sort_keys=True, separators=(",", ":")),
                json.dumps(rec.about, sort_keys=True),
                json.dumps(rec.run_exports) if rec.run_exports else None,
                rec.uploader, rec.uploaded_at, file_ino, file_mtime_ns))
            touched.setdefault((rec.channel, rec.subdir), set()).add(rec.name)
        self.db.conn.executemany(_UPSERT_PACKAGE, params)
        for (channel, subdir), names in touched.items():
            self.touch_subdir(channel, subdir, sorted(names))

    def delete_package(self, rec: PackageRecord) -> None:
        self.db.execute(
            "DELETE FROM packages WHERE channel = ? AND subdir = ? AND filename = ?",
            [rec.channel, rec.subdir, rec.filename],
        )
        self.touch_subdir(rec.channel, rec.subdir, [rec.name])

    def file_identity(self, channel: str, subdir: str) -> dict[str, tuple[int, int, int, str]]:
        """filename -> (size, inode, mtime_ns, sha256): what crash recovery compares with the
        disk (the digest tells a copied file from a changed one)."""
        return {
            fn: (size, ino or 0, mt or 0, sha)
            for fn, size, ino, mt, sha in self.db.execute(
                "SELECT filename, size, file_ino, file_mtime_ns, sha256 FROM packages "
                "WHERE channel = ? AND subdir = ?",
                [channel, subdir],
            )
        }

    def refresh_file_identity(self, channel: str, subdir: str,
                              files: Iterable[tuple[str, int, int]]) -> None:
        """Record (filename, inode, mtime_ns) of files whose bytes are the row's: nothing
        served changes (no generation, no dirty names)."""
        self.db.conn.executemany(
            "UPDATE packages SET file_ino = ?, file_mtime_ns = ? "
            "WHERE channel = ? AND subdir = ? AND filename = ?",
            [(ino, mt, channel, subdir, fn) for fn, ino, mt in files])

    # --- subdir generations and dirty shards -------------------------------------------------
    def touch_subdir(self, channel: str, subdir: str, names: Iterable[str] = ()) -> None:
        self.db.execute(
            "INSERT INTO subdirs (channel, subdir, generation, built) VALUES (?, ?, 1, -1) "
            "ON CONFLICT (channel, subdir) DO UPDATE SET generation = generation + 1",
            [channel, subdir],
        )
        self.db.conn.executemany(
            "INSERT INTO dirty_names (channel, subdir, name) VALUES (?, ?, ?)",
            [(channel, subdir, n) for n in names],
        )

    def mark_all_dirty(self, channel: str, subdir: str) -> None:
        names = [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT name FROM packages WHERE channel = ? AND subdir = ? "
                "UNION SELECT name FROM shards WHERE channel = ? AND subdir = ?",
                [channel, subdir, channel, subdir],
            )
        ]
        self.touch_subdir(channel, subdir, names)

    def subdirs(self, channel: str) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT subdir FROM subdirs WHERE channel = ? ORDER BY subdir", [channel]
            )
        ]

    def generations(self, channel: str) -> tuple[tuple[str, int], ...]:
        """(subdir, generation) of every subdir: changes whenever a file is added or removed
        (what caches of a channel's listing are keyed on)."""
        return tuple((sd, gen) for sd, gen in self.db.execute(
            "SELECT subdir, generation FROM subdirs WHERE channel = ? ORDER BY subdir",
            [channel]).fetchall())

    def subdir_state(self, channel: str, subdir: str) -> tuple[int, int]:
        row = self.db.execute(
            "SELECT generation, built FROM subdirs WHERE channel = ? AND subdir = ?",
            [channel, subdir],
        ).fetchone()
        return (row[0], row[1]) if row else (0, -1)

    def dirty_names(self, channel: str, subdir: str) -> tuple[int, set[str]]:
        rows = self.db.execute(
            "SELECT id, name FROM dirty_names WHERE channel = ? AND subdir = ?",
            [channel, subdir],
        ).fetchall()
        return (max((r[0] for r in rows), default=0), {r[1] for r in rows})

    def mark_built(
        self,
        channel: str,
        subdir: str,
        generation: int,
        last_dirty_id: int,
        shards: dict[str, str | None],
    ) -> list[str]:
        """Record a finished build; returns shard hashes that became superseded."""
        superseded: list[str] = []
        # the rebuilt names' rows only: a publish touches one name of (maybe) tens of thousands
        old = dict(
            self.db.execute(
                "SELECT name, sha256 FROM shards WHERE channel = ? AND subdir = ? "
                "AND name IN (SELECT value FROM json_each(?))",
                [channel, subdir, json.dumps(sorted(shards))],
            ).fetchall()
        )
        for name, digest in shards.items():
            if old.get(name) and old[name] != digest:
                superseded.append(old[name])
            if digest is None:
                self.db.execute(
                    "DELETE FROM shards WHERE channel = ? AND subdir = ? AND name = ?",
                    [channel, subdir, name],
                )
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO shards (channel, subdir, name, sha256) "
                    "VALUES (?, ?, ?, ?)",
                    [channel, subdir, name, digest],
                )
        now = time.time()
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO superseded_shards VALUES (?, ?, ?, ?)",
            [(channel, subdir, s, now) for s in superseded],
        )
        self.db.execute(
            "DELETE FROM dirty_names WHERE channel = ? AND subdir = ? AND id <= ?",
            [channel, subdir, last_dirty_id],
        )
        self.db.execute(
            "UPDATE subdirs SET built = ? WHERE channel = ? AND subdir = ?",
            [generation, channel, subdir],
        )
        return superseded

    def shard_hashes(self, channel: str, subdir: str) -> dict[str, str]:
        return dict(
            self.db.execute(
                "SELECT name, sha256 FROM shards WHERE channel = ? AND subdir = ? ORDER BY name",
                [channel, subdir],
            ).fetchall()
        )

    def expired_shards(self, channel: str, subdir: str, before: float) -> list[str]:
        # usually none is old enough: the current shards are looked at only if some are
        rows = [r[0] for r in self.db.execute(
            "SELECT sha256 FROM superseded_shards WHERE channel = ? AND subdir = ? "
            "AND superseded_at < ?",
            [channel, subdir, before],
        ).fetchall()]
        if not rows:
            return []
        current = set(self.shard_hashes(channel, subdir).values())
        return [r for r in rows if r not in current]

    def forget_shards(self, channel: str, subdir: str, hashes: list[str]) -> None:
        self.db.conn.executemany(
            "DELETE FROM superseded_shards WHERE channel = ? AND subdir = ? AND sha256 = ?",
            [(channel, subdir, h) for h in hashes],
        )

    # --- tokens -------------------------------------------------------------------------
    def insert_token(self, row: dict[str, Any]) -> None:
        self.db.table("tokens").insert(row)
        access_changed(self.db)

    def get_token(self, token_id: str) -> dict[str, Any] | None:
        rows = list(self.db.table("tokens").rows_where("id = ?", [token_id]))
        return rows[0] if rows else None

    def list_tokens(self) -> list[dict[str, Any]]:
        return list(self.db.table("tokens").rows_where(order_by="created"))

    def update_token(self, token_id: str, **fields: Any) -> None:
        self.db.table("tokens").update(token_id, fields)
        if set(fields) != {"last_used"}:  # bookkeeping changes no access
            access_changed(self.db)

    def tokens_of_channel(self, channel: str) -> list[dict[str, Any]]:
        """Tokens (revoked or not) whose channel list names ``channel``."""
        return list(self.db.table("tokens").rows_where(
            "EXISTS (SELECT 1 FROM json_each(tokens.channels) WHERE value = ?)", [channel],
            order_by="created"))

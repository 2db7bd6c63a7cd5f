"""The ONE ingest pipeline: upload, CLI import, watch folder and mirrors all come through here.

1. :func:`receive` / :func:`prepare_file` stream the bytes into a temporary file under
   ``<root>/tmp`` while hashing (sha256, md5, size; bounded), read the info part
   (:mod:`repoproxy.archive`) and apply the core rules. Pure functions of their arguments: bulk
   import runs them in worker processes.
2. :meth:`Ingestor.check` asks plugins (``repoproxy_validate_package``) and reports every
   rejection at once.
3. :meth:`Ingestor.commit` renames the file into place and writes the catalog row in one short
   ``BEGIN IMMEDIATE`` transaction (409 on duplicates unless forced); the caller's ``audit``
   callback writes its audit row in that same transaction.
4. :meth:`Ingestor.publish` rebuilds what changed and fires event hooks after commit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from repoproxy.errors import (
    ChecksumMismatch,
    InvalidName,
    InvalidPackage,
    NotFound,
    PackageExists,
    PackageRejected,
    RepoproxyError,
    TooLarge,
)
from repoproxy.models import Channel, PackageMetadata, PackageRecord, Rejection
from repoproxy.names import check_file_name, is_subdir, package_name_problem, split_filename
from repoproxy.pipeline.archive import Limits, read_metadata
from repoproxy.pipeline.faults import fault_point
from repoproxy.plugins import collect, notify
from repoproxy.storage.catalog import Catalog, utcnow
from repoproxy.storage.db import write_transaction
from repoproxy.storage.store import atomic_write, fsync_dir

if TYPE_CHECKING:
    from sqlite_utils import Database

    from repoproxy.pipeline.repodata import Indexer
    from repoproxy.storage.runtime import Runtime

#: index.json keys that never reach repodata (conda-index's rule)
LEGACY_KEYS = frozenset(
    {
        "arch",
        "has_prefix",
        "mtime",
        "platform",
        "ucs",
        "requires_features",
        "binstar",
        "target-triplet",
        "machine",
        "operatingsystem",
    }
)
CHUNK = 1024 * 1024
log = logging.getLogger(__name__)

#: ``audit(db, record)``: called inside the commit transaction for every committed (or removed)
#: record, so that the record of who did it commits or rolls back with the change
AuditHook = Callable[["Database", PackageRecord], None]


@dataclass
class Prepared:
    """A package received into a temporary file, hashed, read and checked by the core rules."""

    filename: str
    subdir: str
    tmp_path: Path
    size: int
    sha256: str
    md5: str
    metadata: PackageMetadata
    record: dict[str, Any] = field(default_factory=dict)
    attestation: bytes | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.index["name"])


@dataclass(frozen=True)
class Rules:
    """The core's bounds, from settings; picklable for worker processes."""

    limits: Limits = field(default_factory=Limits)
    max_size: int = 1024**3
    future_tolerance_s: int = 86400

    @classmethod
    def from_settings(cls, settings: Any) -> Rules:
        return cls(
            limits=Limits(
                member=settings["repoproxy.max_info_member_size"],
                total=settings["repoproxy.max_info_total_size"],
                index_json=settings["repoproxy.max_index_json_size"],
            ),
            max_size=settings["repoproxy.max_upload_size"],
            future_tolerance_s=settings["repoproxy.future_timestamp_tolerance"],
        )


def copy_hashed(
    read: Callable[[int], bytes], out: IO[bytes], max_size: int, *, sync: bool = True
) -> tuple[int, str, str]:
    """Copy a stream to ``out`` in chunks, hashing it; never holds the whole file in memory.

    ``sync=False`` leaves the fsync to the caller (bulk import syncs a batch at once).
    """
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    while True:
        chunk = read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > max_size:
            raise TooLarge(f"package is larger than the limit of {max_size} bytes")
        sha.update(chunk)
        md5.update(chunk)
        out.write(chunk)
    out.flush()
    if sync:
        os.fsync(out.fileno())
    return size, sha.hexdigest(), md5.hexdigest()


def check_metadata(
    filename: str, target_subdir: str | None, meta: PackageMetadata, rules: Rules
) -> str:
    """The core rules; returns the package's subdir. Every problem is reported at once."""
    name, version, build, _ = split_filename(filename)
    index = meta.index
    problems: list[str] = []
    for key, expected in (("name", name), ("version", version), ("build", build)):
        value = index.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"index.json has no valid {key!r}")
        elif value != expected:
            problems.append(
                f"index.json {key} {value!r} does not match the file name ({expected!r})"
            )
    if isinstance(index.get("name"), str) and (problem := package_name_problem(index["name"])):
        problems.append(problem)
    if "build_number" in index and (
        not isinstance(index["build_number"], int) or isinstance(index["build_number"], bool)
    ):
        problems.append("index.json build_number is not an integer")
    subdir = index.get("subdir")
    if target_subdir is not None and not is_subdir(target_subdir):
        problems.append(f"target subdir {target_subdir!r} is not a valid subdir")
    if subdir is None:
        subdir = target_subdir or ("noarch" if index.get("noarch") else None)
        if subdir is None:
            problems.append("index.json has no 'subdir' and no target subdir was given")
    elif not isinstance(subdir, str) or not is_subdir(subdir):
        problems.append(f"index.json subdir {subdir!r} is not a valid subdir")
    elif target_subdir is not None and subdir != target_subdir:
        problems.append(
            f"index.json subdir {subdir!r} does not match the target subdir {target_subdir!r}"
        )
    for key in ("depends", "constrains", "track_features_list"):
        value = index.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problems.append(f"index.json {key} must be a list of strings")
    ts = index.get("timestamp")
    if ts is not None:
        if not isinstance(ts, (int, float)) or isinstance(ts, bool):
            problems.append("index.json timestamp is not a number")
        else:
            # conda-build writes milliseconds; older packages seconds
            ms = ts if ts > 1e11 else ts * 1000
            if ms > (time.time() + rules.future_tolerance_s) * 1000:
                problems.append(f"index.json timestamp {ts} is in the future")
    if problems:
        raise InvalidPackage(f"{filename}: " + "; ".join(problems), reasons=problems)
    return str(subdir)


def make_record(index: dict[str, Any], size: int, sha256: str, md5: str) -> dict[str, Any]:
    """The repodata.json record: index.json minus the legacy keys, plus size and hashes."""
    record = {k: v for k, v in index.items() if k not in LEGACY_KEYS}
    record.update(md5=md5, sha256=sha256, size=size)
    return record


def _finish(
    filename: str, target_subdir: str | None, tmp: Path, size: int, sha: str, md5: str,
    rules: Rules,
) -> Prepared:
    if size == 0:
        # libarchive reads an empty .tar.bz2 as an archive with no members: say what it is
        raise InvalidPackage(f"{filename}: the file is empty (0 bytes)")
    meta = read_metadata(tmp, filename, rules.limits)
    subdir = check_metadata(filename, target_subdir, meta, rules)
    return Prepared(
        filename=filename,
        subdir=subdir,
        tmp_path=tmp,
        size=size,
        sha256=sha,
        md5=md5,
        metadata=meta,
        record=make_record(meta.index, size, sha, md5),
    )


def _check_sha(expected: str | None, actual: str) -> None:
    if expected and expected.strip().lower() != actual:
        raise ChecksumMismatch(
            f"sha256 mismatch: the client announced {expected.strip().lower()}, "
            f"the bytes received hash to {actual}"
        )


def prepare_file(
    src: Path,
    tmp_dir: Path,
    rules: Rules,
    target_subdir: str | None = None,
    expected_sha256: str | None = None,
    filename: str | None = None,
    sync: bool = True,
    link: bool = False,
) -> Prepared:
    """Copy a local file into ``tmp_dir`` and prepare it (runs in worker processes).

    The copy is what lets a crash or a concurrent change of ``src`` never reach the channel.
    On error the temporary file is removed. ``sync=False``: the caller fsyncs the temporary
    file before committing it (bulk import does a whole batch at once, see
    :func:`repoproxy.storage.store.fsync_files`).

    ``link=True`` hard-links ``src`` instead of copying it where the filesystem allows (the
    same one, links permitted): the channel's file is then ``src``'s inode, so ``src`` must
    not be changed in place afterwards (replacing it by a rename is fine). Creating an inode
    is what a copy costs most here (about 2 ms a file on a busy ext4), a link costs ~50 us.
    """
    filename = filename or src.name
    split_filename(filename)
    tmp = _linked(src, tmp_dir, filename) if link else None
    try:
        if tmp is not None:
            size, sha, md5 = _hash_file(tmp)
            if size > rules.max_size:
                raise TooLarge(f"package is larger than the limit of {rules.max_size} bytes")
        else:
            fd, name = _mkstemp(tmp_dir, filename)
            tmp = Path(name)
            with open(src, "rb") as f_in, os.fdopen(fd, "wb") as f_out:
                size, sha, md5 = copy_hashed(f_in.read, f_out, rules.max_size, sync=sync)
        _check_sha(expected_sha256, sha)
        return _finish(filename, target_subdir, tmp, size, sha, md5, rules)
    except BaseException:
        if tmp is not None:
            with suppress(OSError):
                tmp.unlink()
        raise


def _linked(src: Path, tmp_dir: Path, filename: str) -> Path | None:
    """A new hard link to ``src`` under ``tmp_dir``, or None where links are refused (another
    filesystem, or one without them): the caller copies then."""
    import secrets

    tmp = tmp_dir / f".in-{secrets.token_hex(8)}-{filename}"
    try:
        os.link(src, tmp)
    except FileNotFoundError:
        if tmp_dir.is_dir():
            return None  # the source is gone: the copy says so
        tmp_dir.mkdir(parents=True, exist_ok=True)  # made once, not checked per file
        return _linked(src, tmp_dir, filename)
    except OSError:
        return None
    return tmp


def _mkstemp(tmp_dir: Path, filename: str) -> tuple[int, str]:
    import tempfile

    tmp_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=tmp_dir, prefix=".in-", suffix="-" + filename)


class Ingestor:
    """Runs the pipeline against one server root (catalog, store, plugins)."""

    def __init__(self, runtime: Runtime, indexer: Indexer) -> None:
        self.runtime = runtime
        self.indexer = indexer
        self.rules = Rules.from_settings(runtime.settings)

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog()

    # --- 1. receive ----------------------------------------------------------------------
    @contextmanager
    def receive(
        self,
        read: Callable[[int], bytes],
        filename: str,
        target_subdir: str | None = None,
        expected_sha256: str | None = None,
        max_size: int | None = None,
        sync: bool = True,
    ) -> Iterator[Prepared]:
        """Stream bytes from ``read`` into a temporary file and prepare them.

        The temporary file is removed when the block ends unless :meth:`commit` moved it.
        ``sync=False``: the caller fsyncs the temporary file before committing it (a batch at
        once, :func:`repoproxy.storage.store.fsync_files`), as bulk import does.
        """
        split_filename(filename)
        fd, name = _mkstemp(self.runtime.store.tmp_dir, filename)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                size, sha, md5 = copy_hashed(read, out, max_size or self.rules.max_size,
                                             sync=sync)
            _check_sha(expected_sha256, sha)
            yield _finish(filename, target_subdir, tmp, size, sha, md5, self.rules)
        finally:
            with suppress(OSError):
                tmp.unlink()

    @contextmanager
    def receive_stored(self, rec: PackageRecord) -> Iterator[Prepared]:
        """A file the server already stores, prepared like an upload (copy and move).

        The file is hard-linked into ``tmp/`` (same filesystem as the channels): no byte is
        copied unless the filesystem refuses links. Its hashes are the catalog's (the bytes
        are immutable once committed); its size is checked and its info part read again, so
        the destination's plugins see what an upload would show them.
        """
        store = self.runtime.store
        src = store.package_path(rec.channel, rec.subdir, rec.filename)
        fd, name = _mkstemp(store.tmp_dir, rec.filename)
        os.close(fd)
        tmp = Path(name)
        link = tmp.with_name(tmp.name + ".link")
        try:
            try:
                os.link(src, link)
                os.replace(link, tmp)
            except FileNotFoundError:
                raise NotFound(f"{rec.path}: the file is missing (reindex the subdir)") from None
            except OSError:  # another filesystem, or links not allowed: copy the bytes
                shutil.copyfile(src, tmp)
                with open(tmp, "rb") as f:
                    os.fsync(f.fileno())
            if tmp.stat().st_size != rec.size:
                raise InvalidPackage(f"{rec.path}: the file's size differs from the catalog's "
                                     "(reindex the subdir)")
            prepared = _finish(rec.filename, rec.subdir, tmp, rec.size, rec.sha256, rec.md5,
                               self.rules)
            attestation = attestation_path(src)
            if attestation.is_file():
                prepared.attestation = attestation.read_bytes()
            yield prepared
        finally:
            for p in (link, tmp):
                with suppress(OSError):
                    p.unlink()

    # --- 2. plugins -------------------------------------------------------------------------
    def check(self, channel: Channel, prepared: Prepared) -> None:
        results = self.runtime.pm.hook.repoproxy_validate_package(
            channel=channel, metadata=prepared.metadata, path=prepared.tmp_path,
            services=self.runtime,
        )
        rejections: list[Rejection] = [r for r in collect(results) if isinstance(r, Rejection)]
        if rejections:
            reasons = [f"{r.plugin}: {r.reason}" for r in rejections]
            raise PackageRejected(
                f"{prepared.filename} was refused: " + "; ".join(reasons), reasons=reasons
            )

    # --- 3. commit ------------------------------------------------------------------------
    def commit(
        self,
        channel: Channel,
        prepared: Prepared,
        *,
        force: bool = False,
        uploader: str | None = None,
        in_place: bool = False,
        audit: AuditHook | None = None,
    ) -> PackageRecord:
        """Move the file into place and write its catalog row, atomically together."""
        records, errors = self.commit_many(channel, [prepared], force=force, uploader=uploader,
                                           in_place=in_place, audit=audit)
        if errors:
            raise errors[0][1]
        return records[0]

    def commit_many(
        self,
        channel: Channel,
        items: list[Prepared],
        *,
        force: bool = False,
        uploader: str | None = None,
        in_place: bool = False,
        audit: AuditHook | None = None,
        inside: Callable[[Database, list[PackageRecord]], None] | None = None,
    ) -> tuple[list[PackageRecord], list[tuple[Prepared, RepoproxyError]]]:
        """Commit a batch in one short write transaction (bulk import, watch folder).

        The renames happen inside the transaction so that two writers of the same file name
        are serialised by SQLite's write lock; each directory is fsynced once, before COMMIT,
        so a committed row never points at a rename that a crash could undo. A crash between
        rename and COMMIT leaves a file whose inode/mtime the catalog does not know, which
        start-up recovery indexes. Duplicates are returned as errors, not raised.

        ``inside(db, records)`` runs last in the transaction, once the files are in place and
        their directories synced: an operation that commits more with the files (a move
        removing them from their origin) does it there, and its exception undoes all.
        """
        store = self.runtime.store
        db = self.runtime.db()
        catalog = Catalog(db)
        records: list[PackageRecord] = []
        errors: list[tuple[Prepared, RepoproxyError]] = []
        moved: list[tuple[str, str | None]] = []
        with write_transaction(db):
            if catalog.get_channel(channel.name) is None:
                raise NotFound(f"channel {channel.name!r} does not exist")
            dirs: dict[str, str] = {}
            # the stored files' first index times, one query per subdir (the write lock is
            # held: no other writer changes them meanwhile); a name twice in the batch finds
            # its first occurrence here too
            existing: dict[tuple[str, str], int] = {}
            for subdir in {prepared.subdir for prepared in items}:
                existing.update(((subdir, fn), ts) for fn, (ts, _) in catalog.stored_files(
                    channel.name, subdir, [p.filename for p in items if p.subdir == subdir]
                ).items())
            rows: list[tuple[PackageRecord, int, int]] = []
            now = utcnow()
            try:
                for prepared in items:
                    if prepared.subdir not in dirs:  # names checked once per subdir
                        dirs[prepared.subdir] = str(store.package_path(
                            channel.name, prepared.subdir, prepared.filename).parent)
                    # str paths: pathlib's objects were a fifth of this loop's time
                    dest = os.path.join(dirs[prepared.subdir],  # noqa: PTH118
                                        check_file_name(prepared.filename))
                    key = (prepared.subdir, prepared.filename)
                    if key in existing and not force:
                        errors.append((prepared, PackageExists(
                            f"{channel.name}/{prepared.subdir}/{prepared.filename} already "
                            "exists (use force to replace it)")))
                        continue
                    rec = self._record(channel, prepared, existing.get(key), uploader, now)
                    existing.setdefault(key, rec.indexed_timestamp)
                    attestation = dest + ATTESTATION_SUFFIX
                    if in_place:
                        st = os.stat(dest)  # noqa: PTH116
                    else:
                        # an attestation speaks for the bytes it was made for: the old one
                        # goes before the new bytes arrive, the new one (if any) comes after,
                        # so a crash at any point never pairs new bytes with an old attestation
                        old_attestation = self._backup(attestation)
                        if old_attestation is not None or prepared.attestation is not None:
                            moved.append((attestation, old_attestation))
                        if old_attestation is not None:
                            os.unlink(attestation)  # noqa: PTH108
                        moved.append((dest, self._backup(dest)))
                        st = store.move_into_place(prepared.tmp_path, Path(dest), sync=False)
                    rows.append((rec, st.st_ino, st.st_mtime_ns))
                    if prepared.attestation is not None:
                        atomic_write(Path(attestation), prepared.attestation)
                    records.append(rec)
                catalog.upsert_packages(rows)
                if audit is not None:
                    for rec in records:
                        audit(db, rec)
                for directory in {os.path.dirname(dest) for dest, _ in moved}:  # noqa: PTH120
                    fsync_dir(Path(directory))
                fault_point("commit:placed")
                if inside is not None:
                    inside(db, records)
            except BaseException:
                for dest, backup in reversed(moved):
                    self._undo_move(dest, backup)
                raise
        for _, backup in moved:
            if backup is not None:
                with suppress(OSError):
                    os.unlink(backup)  # noqa: PTH108
        return records, errors

    @staticmethod
    def _record(channel: Channel, prepared: Prepared, existing: int | None,
                uploader: str | None, now: str) -> PackageRecord:
        """The catalog row of a file committed at ``now`` (one stamp for a whole batch: a
        formatted time per file was a twentieth of a bulk commit)."""
        # CEP-47: the first time a file entered the index, kept across replacements
        indexed = existing if existing is not None else int(time.time() * 1000)
        index = prepared.metadata.index
        return PackageRecord(
            channel=channel.name,
            subdir=prepared.subdir,
            filename=prepared.filename,
            name=prepared.name,
            version=str(index["version"]),
            build=str(index["build"]),
            build_number=int(index.get("build_number") or 0),
            size=prepared.size,
            sha256=prepared.sha256,
            md5=prepared.md5,
            indexed_timestamp=indexed,
            record=dict(prepared.record, indexed_timestamp=indexed),
            about=prepared.metadata.about,
            run_exports=prepared.metadata.run_exports,
            uploader=uploader,
            uploaded_at=now,
        )

    @staticmethod
    def _backup(path: str) -> str | None:
        """A hard link to ``path`` (if it exists) that :meth:`_undo_move` puts back."""
        head, name = os.path.split(path)
        backup = os.path.join(head, f".bak-{os.getpid()}-{name}")  # noqa: PTH118
        try:
            os.link(path, backup)
        except FileNotFoundError:
            return None
        return backup

    @staticmethod
    def _undo_move(dest: str, backup: str | None) -> None:
        if backup is not None:
            os.replace(backup, dest)
        else:
            with suppress(OSError):
                os.unlink(dest)  # noqa: PTH108

    # --- 4. publish -----------------------------------------------------------------------
    def publish(self, channel: Channel, records: Iterable[PackageRecord]) -> None:
        records = list(records)
        for subdir in sorted({r.subdir for r in records}):
            self.indexer.build(channel.name, subdir)
        self.indexer.build_channeldata(channel.name, {r.name for r in records})
        dirs = {sd: self.runtime.store.subdir_dir(channel.name, sd)
                for sd in {r.subdir for r in records}}
        paths = [dirs[rec.subdir] / rec.filename for rec in records]  # names ingest checked
        notify(self.runtime.pm, "repoproxy_packages_added",
               services=self.runtime, channel=channel, records=records, paths=paths)
        for rec, path in zip(records, paths, strict=True):
            notify(self.runtime.pm, "repoproxy_package_added",
                   services=self.runtime, channel=channel, record=rec, path=path)

    # --- the whole pipeline, for one stream ----------------------------------------------
    def ingest_stream(
        self,
        channel: Channel | str,
        read: Callable[[int], bytes],
        filename: str,
        *,
        target_subdir: str | None = None,
        expected_sha256: str | None = None,
        force: bool = False,
        uploader: str | None = None,
        attestation: bytes | None = None,
        max_size: int | None = None,
        after_receive: Callable[[Prepared], None] | None = None,
        audit: AuditHook | None = None,
    ) -> PackageRecord:
        """The whole pipeline for one stream.

        ``after_receive`` runs once the package bytes are in their temporary file, before the
        plugin checks: an upload view reads the rest of a multipart body there (side parts
        such as an attestation may follow the file part).
        """
        started = time.perf_counter()
        if isinstance(channel, str):
            channel = self.catalog.require_channel(channel)
        with self.receive(read, filename, target_subdir, expected_sha256, max_size) as prepared:
            prepared.attestation = attestation
            if after_receive is not None:
                after_receive(prepared)
            self.check(channel, prepared)
            rec = self.commit(channel, prepared, force=force, uploader=uploader, audit=audit)
        self.publish(channel, [rec])
        notify(self.runtime.pm, "repoproxy_operation_timed", services=self.runtime,
               operation="ingest", channel=channel.name, seconds=time.perf_counter() - started)
        return rec

    def ingest_file(self, channel_name: str, src: Path, **kwargs: Any) -> PackageRecord:
        with open(src, "rb") as f:
            return self.ingest_stream(channel_name, f.read, src.name, **kwargs)

    # --- removal -------------------------------------------------------------------------
    def remove(self, channel_name: str, subdir: str, filename: str, *,
               audit: AuditHook | None = None) -> PackageRecord:
        return self.remove_many(channel_name, [(subdir, filename)], audit=audit)[0]

    def remove_many(
        self,
        channel_name: str,
        files: Iterable[tuple[str, str]],
        *,
        audit: AuditHook | None = None,
        audit_all: Callable[[Database, list[PackageRecord]], None] | None = None,
    ) -> list[PackageRecord]:
        """Remove files (``(subdir, filename)``) in one transaction, then their bytes.

        Inside the transaction, ``audit`` runs once per record, ``audit_all`` once with every
        record (one audit row for a whole package).
        """
        db = self.runtime.db()
        catalog = Catalog(db)
        removed: list[PackageRecord] = []
        with write_transaction(db):
            channel = catalog.require_channel(channel_name)
            for subdir, filename in files:
                rec = catalog.get_package(channel_name, subdir, filename)
                if rec is None:
                    raise NotFound(f"{channel_name}/{subdir}/{filename} does not exist")
                catalog.delete_package(rec)
                removed.append(rec)
                if audit is not None:
                    audit(db, rec)
            if audit_all is not None:
                audit_all(db, removed)
        for rec in removed:
            path = self.runtime.store.package_path(channel_name, rec.subdir, rec.filename)
            for p in (attestation_path(path), path):
                with suppress(FileNotFoundError):
                    p.unlink()
        self.unpublish(channel, removed)
        return removed

    def unpublish(self, channel: Channel, removed: list[PackageRecord]) -> None:
        """After removals committed: rebuild what changed, then fire the removal events."""
        for subdir in sorted({r.subdir for r in removed}):
            self.indexer.build(channel.name, subdir)
        self.indexer.build_channeldata(channel.name, {r.name for r in removed})
        for rec in removed:
            notify(self.runtime.pm, "repoproxy_package_removed",
                   services=self.runtime, channel=channel, record=rec)

    # --- reconciliation (reindex and crash recovery) --------------------------------------
    def reconcile(self, channel_name: str, subdir: str, *,
                  audit: Callable[[Database, dict[str, int]], None] | None = None
                  ) -> dict[str, int]:
        """Make the catalog agree with the files of a subdir, then rebuild its repodata.

        Files on disk the catalog does not know (or knows with another inode/mtime/size: a
        crash between rename and commit) are re-read; a file known with another inode or
        mtime whose bytes are the row's (its sha256; a copied or restored tree) only has its
        identity recorded (``refreshed``); rows without a file are dropped (in the last
        transaction, with the ``audit`` callback's row).
        """
        store = self.runtime.store
        directory = store.subdir_dir(channel_name, subdir)
        known = self.catalog.file_identity(channel_name, subdir)
        channel = self.catalog.require_channel(channel_name)
        stats = {"added": 0, "updated": 0, "removed": 0, "invalid": 0, "refreshed": 0}
        on_disk: set[str] = set()
        #: (filename, inode, mtime_ns) of files whose bytes are their row's
        refreshed: list[tuple[str, int, int]] = []
        if directory.is_dir():
            for entry in os.scandir(directory):
                if not entry.is_file() or entry.name.startswith("."):
                    continue
                try:
                    split_filename(entry.name)
                except InvalidName as e:
                    if entry.name in known:
                        # a row an older, looser rule let in: its file is still here, so the
                        # row stays (deleting is the operator's call); it is reported
                        on_disk.add(entry.name)
                        log.warning("%s/%s: %s", channel_name, subdir, e.message)
                    continue
                on_disk.add(entry.name)
                st = entry.stat()
                row = known.get(entry.name)
                if row is not None and row[:3] == (st.st_size, st.st_ino, st.st_mtime_ns):
                    continue
                hashed = None
                if row is not None and row[0] == st.st_size:
                    # another inode or mtime, the same size: a copied or restored tree (every
                    # file of it), or a replacement whose commit a crash cut off. Bytes whose
                    # digest is the row's need no re-reading, re-checking nor re-committing:
                    # only their identity is recorded (a copied 5,000-file channel's
                    # recovery: 5.6 s of reading and committing every file, before; 0.5-0.8 s)
                    hashed = _hash_file(Path(entry.path))
                    if hashed[1] == row[3]:
                        refreshed.append((entry.name, st.st_ino, st.st_mtime_ns))
                        continue
                try:
                    meta = read_metadata(Path(entry.path), entry.name, self.rules.limits)
                    check_metadata(entry.name, subdir, meta, self.rules)
                except (InvalidPackage, InvalidName):
                    stats["invalid"] += 1
                    continue
                size, sha, md5 = hashed or _hash_file(Path(entry.path))
                prepared = Prepared(entry.name, subdir, Path(entry.path), size, sha, md5, meta,
                                    make_record(meta.index, size, sha, md5))
                self.commit(channel, prepared, force=True, in_place=True)
                stats["updated" if entry.name in known else "added"] += 1
        gone = [fn for fn in known if fn not in on_disk]
        stats["refreshed"] = len(refreshed)
        if gone or refreshed or audit is not None:
            db = self.runtime.db()
            with write_transaction(db):
                cat = Catalog(db)
                cat.refresh_file_identity(channel_name, subdir, refreshed)
                for fn in gone:
                    rec = cat.get_package(channel_name, subdir, fn)
                    if rec is not None:
                        cat.delete_package(rec)
                        stats["removed"] += 1
                if audit is not None:
                    audit(db, stats)
        return stats


ATTESTATION_SUFFIX = ".attestation.json"


def attestation_path(package: Path) -> Path:
    """Where the attestation (a sigstore bundle) uploaded with a package file is kept."""
    return package.with_name(package.name + ATTESTATION_SUFFIX)


def _hash_file(path: Path) -> tuple[int, str, str]:
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            sha.update(chunk)
            md5.update(chunk)
    return size, sha.hexdigest(), md5.hexdigest()

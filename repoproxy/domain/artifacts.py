"""Generic artifacts (family ``gra``): any file kept in a channel under a name and a version,
notebooks (``.ipynb``) included. The operations (upload, delete one file, delete a name) and
the reads (list, one file, search, newest notebook), for every face.

Artifacts are stored beside a channel's conda packages but are never part of its conda index:
they live in their own table and under ``<channel>/.artifacts/<sha256>`` (a dot-name no
subdir can have, so the conda-facing routes never reach it). The blob is content-addressed,
so replacing a file (``force``) is one row update, and a crash at any instant leaves either
the old file or the new one served, never a half-written one.

Access is the channel's: reads go through the read model (a channel the caller may not read
answers exactly like an absent one); the web layer admits uploads and deletions with the
same permissions as packages (``channel:upload``, ``channel:delete``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from repoproxy.domain.audit import CLI, Actor, actor_name, audit
from repoproxy.domain.reads import ChannelRef, ReadModel, version_key
from repoproxy.errors import (
    ChecksumMismatch,
    InvalidName,
    InvalidPackage,
    NotFound,
    PackageExists,
    TooLarge,
)
from repoproxy.storage.artifacts import ArtifactRecord, Artifacts
from repoproxy.storage.catalog import Catalog, utcnow
from repoproxy.storage.db import write_transaction
from repoproxy.storage.store import fsync_dir

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

FAMILY = "gra"
NOTEBOOK_SUFFIX = ".ipynb"
BLOB_DIR = ".artifacts"
CHUNK = 1024 * 1024

# names and versions appear in URLs and file names: a conservative alphabet, no separators,
# never a dot first (no "..", no hidden names), so no value can leave its directory
NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}\Z")
VERSION_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.+!-]{0,63}\Z")
FILENAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.+ -]{0,210}\Z")


def check_artifact_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidName(f"invalid artifact name {name!r}: letters, digits and ._+- "
                          "(not first), at most 128 characters")
    return name


def check_artifact_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise InvalidName(f"invalid artifact version {version!r}: letters, digits and ._+!- "
                          "(not first), at most 64 characters")
    return version


def check_artifact_filename(filename: str) -> str:
    if (not isinstance(filename, str) or not FILENAME_RE.match(filename)
            or filename.endswith((" ", "."))):
        raise InvalidName(f"invalid artifact file name {filename!r}: letters, digits, spaces "
                          "and ._+- (not first), at most 211 characters")
    return filename


def kind_of(filename: str) -> str:
    return "notebook" if filename.lower().endswith(NOTEBOOK_SUFFIX) else "file"


def blob_path(core: Core, channel: str, sha256: str) -> Path:
    if len(sha256) != 64 or sha256.strip("0123456789abcdef"):
        raise InvalidName("invalid sha256")
    return core.store.channel_dir(channel) / BLOB_DIR / sha256


# --- operations ------------------------------------------------------------------------------
def upload_artifact(core: Core, channel: str, read: Callable[[int], bytes], filename: str, *,
                    name: str, version: str, actor: Actor = CLI,
                    expected_sha256: str | None = None, force: bool = False,
                    description: str = "") -> ArtifactRecord:
    """Store one file as artifact ``name``/``version``, audited (``artifact.upload``).

    The bytes are streamed to a temporary file (hashed on the way, bounded by
    ``repoproxy.max_upload_size``); a notebook must parse as a notebook. Refused uploads leave
    nothing behind. An existing file of the same name and version gets 409 unless ``force``.
    """
    check_artifact_name(name)
    check_artifact_version(version)
    check_artifact_filename(filename)
    core.catalog().require_channel(channel)
    limit = int(core.settings["repoproxy.max_upload_size"])
    with core.store.temp_file(suffix=".artifact") as (tmp, f):
        sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        while chunk := read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"upload is over the limit of {limit} bytes")
            sha.update(chunk)
            md5.update(chunk)
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
        digest = sha.hexdigest()
        if expected_sha256 and expected_sha256.strip().lower() != digest:
            raise ChecksumMismatch(f"sha256 mismatch: expected {expected_sha256}, got {digest}")
        kind = kind_of(filename)
        if kind == "notebook":
            _check_notebook(core, tmp, size)
        rec = ArtifactRecord(channel=channel, name=name, version=version, filename=filename,
                             kind=kind, size=size, sha256=digest, md5=md5.hexdigest(),
                             description=description[:1000], uploader=actor_name(actor),
                             uploaded_at=utcnow())
        blob = blob_path(core, channel, digest)
        db = core.db()
        placed = False
        try:
            # the blob is placed inside the write transaction: deletions decide whether a
            # blob is still used under the same lock, so they never remove one being added
            with write_transaction(db):
                Catalog(db).require_channel(channel)
                table = Artifacts(db)
                old = table.get(channel, name, version, filename)
                if old is not None and not force:
                    raise PackageExists(f"artifact {rec.path} already exists in {channel!r}")
                if not blob.exists():
                    blob.parent.mkdir(parents=True, exist_ok=True)
                    core.store.move_into_place(tmp, blob)
                    placed = True
                table.put(rec)
                audit(db, actor, "artifact.upload", channel, rec.path, sha256=digest,
                      size=size, replaced=old is not None)
                if old is not None and old.sha256 != digest:
                    _drop_unused_blob(core, table, channel, old.sha256)
        except BaseException:
            if placed:
                with suppress(OSError):
                    _drop_unused_blob(core, Artifacts(core.db()), channel, digest)
            raise
    return rec


def _check_notebook(core: Core, path: Path, size: int) -> None:
    limit = int(core.settings["repoproxy.max_notebook_size"])
    if size > limit:
        raise TooLarge(f"notebook is over repoproxy.max_notebook_size ({limit} bytes)")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise InvalidPackage("not a notebook: the file is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) \
            or not isinstance(data.get("nbformat"), int):
        raise InvalidPackage("not a notebook: it needs 'cells' (a list) and 'nbformat'")


def _drop_unused_blob(core: Core, table: Artifacts, channel: str, sha256: str) -> None:
    if table.blob_users(channel, sha256) == 0:
        path = blob_path(core, channel, sha256)
        with suppress(FileNotFoundError):
            path.unlink()
            fsync_dir(path.parent)


def remove_orphan_blobs(core: Core, channel: str) -> int:
    """Blobs no row names (a crash between placing one and committing its row), and
    temporary files of interrupted writes; at start-up. Under the write lock, like uploads."""
    directory = core.store.channel_dir(channel) / BLOB_DIR
    if not directory.is_dir():
        return 0
    removed = 0
    db = core.db()
    with write_transaction(db):
        table = Artifacts(db)
        for path in directory.iterdir():
            named = len(path.name) == 64 and not path.name.strip("0123456789abcdef")
            if not named or table.blob_users(channel, path.name) == 0:
                with suppress(OSError):
                    path.unlink()
                    removed += 1
    return removed


def delete_artifact(core: Core, channel: str, name: str, version: str, filename: str, *,
                    actor: Actor = CLI) -> ArtifactRecord:
    """Delete one artifact file (``artifact.delete``)."""
    db = core.db()
    with write_transaction(db):
        table = Artifacts(db)
        rec = table.get(channel, name, version, filename)
        if rec is None:
            raise NotFound(f"artifact {name}/{version}/{filename} not found")
        table.delete(rec)
        audit(db, actor, "artifact.delete", channel, rec.path, sha256=rec.sha256)
        _drop_unused_blob(core, table, channel, rec.sha256)
    return rec


def delete_artifact_name(core: Core, channel: str, name: str, *,
                         actor: Actor = CLI) -> list[ArtifactRecord]:
    """Delete every file of an artifact name, in one transaction with one audit row."""
    db = core.db()
    with write_transaction(db):
        table = Artifacts(db)
        records = table.of_channel(channel, name)
        if not records:
            raise NotFound(f"artifact {name!r} not found in channel {channel!r}")
        for rec in records:
            table.delete(rec)
        audit(db, actor, "artifact.remove", channel, name,
              files=[r.path for r in records])
        for sha in {r.sha256 for r in records}:
            _drop_unused_blob(core, table, channel, sha)
    return records


# --- reads (through the read model: the channel's access rules) -----------------------------
def artifacts(reads: ReadModel, ref: ChannelRef, name: str | None = None) -> list[ArtifactRecord]:
    """Artifact files of a readable channel (a name with no file: NotFound)."""
    channel = reads.channel(ref)
    records = Artifacts(reads.core.db()).of_channel(channel.name, name)
    if name is not None and not records:
        raise NotFound(f"artifact {name!r} not found in channel {channel.name!r}")
    return newest_first(records)


def newest_first(records: list[ArtifactRecord]) -> list[ArtifactRecord]:
    return sorted(records, key=lambda r: (version_key(r.version), r.uploaded_at, r.filename),
                  reverse=True)


def artifact_file(reads: ReadModel, ref: ChannelRef, name: str, version: str,
                  filename: str) -> tuple[ArtifactRecord, Path]:
    """One file and where its bytes are; absent and unreadable answer alike."""
    channel = reads.channel(ref)
    rec = Artifacts(reads.core.db()).get(channel.name, name, version, filename)
    if rec is None:
        raise NotFound(f"{filename} not found")
    return rec, blob_path(reads.core, channel.name, rec.sha256)


def artifact_count(reads: ReadModel, ref: ChannelRef) -> int:
    return Artifacts(reads.core.db()).count(reads.channel(ref).name)


def search_artifacts(reads: ReadModel, q: str) -> list[dict[str, object]]:
    """Artifact names containing ``q`` in every readable channel, shaped like package hits."""
    q = q.strip().lower()
    results: list[dict[str, object]] = []
    table = Artifacts(reads.core.db())
    for channel in reads.channels():
        by_name: dict[str, list[ArtifactRecord]] = {}
        for rec in table.search(channel.name, q):
            by_name.setdefault(rec.name, []).append(rec)
        for name, records in sorted(by_name.items()):
            newest = newest_first(records)[0]
            results.append({
                "channel": channel.name, "name": name, "version": newest.version,
                "family": FAMILY, "build": "", "license": "",
                "platforms": [], "exact": name.lower() == q,
                "kinds": sorted({r.kind for r in records}),
            })
    results.sort(key=lambda r: (not r["exact"], r["name"], r["channel"]))
    return results

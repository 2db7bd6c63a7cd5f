"""Package operations: upload (a stream or a local file), import a directory, delete a file,
delete a whole package, reindex a subdir.

They run the one ingest pipeline (:mod:`repoproxy.pipeline.ingest`) and hand it an audit
callback that writes the audit row inside the pipeline's own commit transaction: a package is
never in a channel without the record of who put it there, nor the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from repoproxy.domain.audit import CLI, Actor, actor_name, audit
from repoproxy.errors import NotFound
from repoproxy.models import Channel, PackageRecord
from repoproxy.names import check_subdir
from repoproxy.pipeline.bulk import ImportResult, import_packages
from repoproxy.pipeline.ingest import AuditHook, Prepared

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


def upload_audit(actor: Actor) -> AuditHook:
    """The audit callback of uploads and imports: one ``package.upload`` row per file."""
    def record(db: Database, rec: PackageRecord) -> None:
        audit(db, actor, "package.upload", rec.channel, rec.path, sha256=rec.sha256,
              size=rec.size)
    return record


def upload(core: Core, channel: Channel | str, read: Callable[[int], bytes], filename: str, *,
           actor: Actor = CLI, target_subdir: str | None = None,
           expected_sha256: str | None = None, force: bool = False,
           after_receive: Callable[[Prepared], None] | None = None) -> PackageRecord:
    """Receive a stream into a channel through the whole pipeline, audited."""
    return core.ingestor.ingest_stream(
        channel, read, filename, target_subdir=target_subdir, expected_sha256=expected_sha256,
        force=force, uploader=actor_name(actor), after_receive=after_receive,
        audit=upload_audit(actor))


def upload_file(core: Core, channel: Channel | str, path: Path, *, actor: Actor = CLI,
                **kwargs: Any) -> PackageRecord:
    with open(path, "rb") as f:
        return upload(core, channel, f.read, path.name, actor=actor, **kwargs)


def import_files(core: Core, channel: str, files: list[tuple[Path, str | None]], *,
                 actor: Actor = CLI, force: bool = False, workers: int | None = None,
                 progress: Callable[[int], None] | None = None,
                 link: bool = False) -> ImportResult:
    """Bulk import (worker processes, batched commits), one audit row per imported file."""
    return import_packages(core.ingestor, channel, files, force=force, workers=workers,
                           progress=progress, audit=upload_audit(actor), link=link)


def delete_file(core: Core, channel: str, subdir: str, filename: str, *,
                actor: Actor = CLI) -> PackageRecord:
    check_subdir(subdir)

    def record(db: Database, rec: PackageRecord) -> None:
        audit(db, actor, "package.delete", rec.channel, rec.path, sha256=rec.sha256)

    return core.ingestor.remove(channel, subdir, filename, audit=record)


def delete_package(core: Core, channel: str, name: str, *,
                   actor: Actor = CLI) -> list[PackageRecord]:
    """Every file of a package name, in one transaction with one audit row."""
    records = list(core.catalog().packages(channel, name=name))
    if not records:
        raise NotFound(f"package {name!r} not found in channel {channel!r}")

    def record(db: Database, removed: list[PackageRecord]) -> None:
        audit(db, actor, "package.remove", channel, name,
              files=sorted(r.path for r in removed))

    return core.ingestor.remove_many(channel, [(r.subdir, r.filename) for r in records],
                                     audit_all=record)


def reindex(core: Core, channel: str, subdir: str, *, actor: Actor = CLI) -> dict[str, int]:
    """Make the catalog agree with a subdir's files, then rebuild its indexes."""
    check_subdir(subdir)
    core.catalog().require_channel(channel)

    def record(db: Database, stats: dict[str, int]) -> None:
        audit(db, actor, "channel.reindex", channel, subdir, **stats)

    stats = core.ingestor.reconcile(channel, subdir, audit=record)
    core.indexer.build(channel, subdir, force=True)
    core.indexer.build_channeldata(channel)
    return stats

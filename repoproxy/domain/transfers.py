"""Copy, move and remove a package's files between channels and subchannels.

Each is one operation of the application layer, through the one ingest pipeline:

- the files are hard-linked into ``<root>/tmp`` (no byte copy where the filesystem allows; a
  copy otherwise), read back like any upload and checked by the destination's plugins (its
  policy may refuse: every reason is reported, nothing is written);
- :meth:`Ingestor.commit_many` renames them into the destination and writes their rows in one
  transaction; a file already at the destination is reported as a duplicate, not replaced;
- a move removes the origin's rows and files inside that same transaction, after the
  destination's files are in place and synced, and writes one ``package.move`` audit row.

Crash safety of a move: before COMMIT the catalog still lists the origin; the destination's
file (if renamed) is unknown to it and start-up recovery indexes it; the origin's file (if
already unlinked) is a row without a file that recovery drops. So whatever instant the
process dies at, the file is served from the origin, the destination, or both, never from
neither. ``REPOPROXY_FAULT_AT`` (see :mod:`repoproxy.pipeline.faults`) names the steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from repoproxy.domain.audit import CLI, Actor, actor_name, audit
from repoproxy.errors import InvalidName, NotFound, PackageRejected, RepoproxyError
from repoproxy.models import PackageRecord
from repoproxy.names import check_channel_name, check_subdir, package_name_problem
from repoproxy.pipeline.faults import fault_point
from repoproxy.pipeline.ingest import attestation_path
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.store import fsync_dir

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


@dataclass(frozen=True)
class Spec:
    """``CHANNEL[/SUB]::PACKAGE[==VERSION]``, the seed CLI's way to name what to act on."""

    channel: str
    package: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> Spec:
        channel, sep, rest = str(text).partition("::")
        if not sep or not channel or not rest:
            raise InvalidName(f"expected CHANNEL[/SUB]::PACKAGE[==VERSION], got {text!r}")
        package, sep, version = rest.partition("==")
        return cls.of(channel, package, version if sep else None)

    @classmethod
    def of(cls, channel: str, package: str, version: str | None = None) -> Spec:
        check_channel_name(channel)
        if problem := package_name_problem(package):
            raise InvalidName(problem)
        if version is not None and not version:
            raise InvalidName("an empty version: give PACKAGE==VERSION or leave it out")
        return cls(channel, package, version or None)


@dataclass
class TransferResult:
    """What an operation did: the files it wrote or removed, and the duplicates it left."""

    action: str
    source: str
    destination: str | None
    files: list[PackageRecord] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action, "source": self.source,
            "files": [r.path for r in self.files], "duplicates": self.duplicates,
        }
        if self.destination is not None:
            out["destination"] = self.destination
        return out


def select(catalog: Catalog, spec: Spec, subdir: str | None = None,
           filename: str | None = None,
           visible: Callable[[PackageRecord], bool] | None = None) -> list[PackageRecord]:
    """The origin's files the spec and the narrowing options name (NotFound if none).

    ``visible`` is the caller's read model filter: a policy-hidden file is, for a caller of the
    API, exactly as absent as a file that does not exist (same NotFound), so nobody can copy it
    out into a channel that serves it, nor learn that it exists.
    """
    if subdir is not None:
        check_subdir(subdir)
    catalog.require_channel(spec.channel)
    records = [r for r in catalog.packages(spec.channel, subdir=subdir, name=spec.package)
               if (spec.version is None or r.version == spec.version)
               and (filename is None or r.filename == filename)
               and (visible is None or visible(r))]
    if not records:
        what = spec.package + (f"=={spec.version}" if spec.version else "")
        narrow = "".join(f" {k} {v!r}" for k, v in (("in subdir", subdir), ("file", filename))
                         if v)
        raise NotFound(f"no file of {what}{narrow} in channel {spec.channel!r}")
    return records


def copy_package(core: Core, spec: Spec, destination: str, *, subdir: str | None = None,
                 filename: str | None = None, actor: Actor = CLI,
                 visible: Callable[[PackageRecord], bool] | None = None) -> TransferResult:
    """Copy files of a package into another channel (or subchannel); the origin keeps them."""
    return _transfer(core, "copy", spec, destination, subdir, filename, actor, visible)


def move_package(core: Core, spec: Spec, destination: str, *, subdir: str | None = None,
                 filename: str | None = None, actor: Actor = CLI,
                 visible: Callable[[PackageRecord], bool] | None = None) -> TransferResult:
    """Move files of a package: in the destination and out of the origin, in one commit.

    A file the destination already holds is reported as a duplicate and stays in the origin.
    """
    return _transfer(core, "move", spec, destination, subdir, filename, actor, visible)


def remove_package(core: Core, spec: Spec, *, subdir: str | None = None,
                   filename: str | None = None, actor: Actor = CLI,
                   visible: Callable[[PackageRecord], bool] | None = None) -> TransferResult:
    """Remove files of a package (all of them, one version, one subdir or one file)."""
    records = select(core.catalog(), spec, subdir, filename, visible)

    def record(db: Database, removed: list[PackageRecord]) -> None:
        audit(db, actor, "package.remove", spec.channel, spec.package,
              version=spec.version, files=sorted(r.path for r in removed))

    removed = core.ingestor.remove_many(spec.channel, [(r.subdir, r.filename) for r in records],
                                        audit_all=record)
    return TransferResult("remove", spec.channel, None, removed)


def _transfer(core: Core, action: str, spec: Spec, destination: str, subdir: str | None,
              filename: str | None, actor: Actor,
              visible: Callable[[PackageRecord], bool] | None) -> TransferResult:
    check_channel_name(destination)
    if destination == spec.channel:
        raise RepoproxyError(f"the destination is the origin ({destination!r})")
    catalog = core.catalog()
    records = select(catalog, spec, subdir, filename, visible)
    dest = catalog.require_channel(destination)
    origin = catalog.require_channel(spec.channel)
    ingestor = core.ingestor
    result = TransferResult(action, spec.channel, destination)
    with ExitStack() as stack:
        prepared = [stack.enter_context(ingestor.receive_stored(rec)) for rec in records]
        fault_point(f"{action}:linked")
        reasons: list[str] = []
        for item in prepared:
            try:
                ingestor.check(dest, item)
            except PackageRejected as e:
                reasons.extend(f"{item.filename}: {r}" for r in e.reasons)
        if reasons:
            raise PackageRejected(f"{destination} refused {len(reasons)} file(s): "
                                  + "; ".join(reasons), reasons=reasons)
        origin_of = {(r.subdir, r.filename): r for r in records}

        def inside(db: Database, written: list[PackageRecord]) -> None:
            sources = [origin_of[(r.subdir, r.filename)] for r in written]
            if action == "move":
                _take_out(core, db, sources, destination)
            audit(db, actor, f"package.{action}", spec.channel, spec.package,
                  version=spec.version, destination=destination,
                  files=sorted(r.path for r in sources))

        written, errors = ingestor.commit_many(dest, prepared, uploader=actor_name(actor),
                                               inside=inside)
    fault_point(f"{action}:committed")
    result.files = written
    result.duplicates = sorted(f"{destination}/{p.subdir}/{p.filename}" for p, _ in errors)
    if written:
        ingestor.publish(dest, written)
    fault_point(f"{action}:published")
    if action == "move" and written:
        ingestor.unpublish(origin, [origin_of[(r.subdir, r.filename)] for r in written])
    return result


def _take_out(core: Core, db: Database, sources: list[PackageRecord],
              destination: str) -> None:
    """Inside the move's transaction: the origin's rows go, then its files.

    The destination's files are already in place and synced, so unlinking here can never
    leave a file nowhere; if the transaction fails after this, the links are put back.
    """
    catalog = Catalog(db)
    unlinked: list[tuple[Path, Path]] = []
    try:
        for rec in sources:
            catalog.delete_package(rec)
        fault_point("move:rows-deleted")
        for rec in sources:
            path = core.store.package_path(rec.channel, rec.subdir, rec.filename)
            dest_twin = core.store.package_path(destination, rec.subdir, rec.filename)
            with suppress(FileNotFoundError):
                attestation_path(path).unlink()
            path.unlink()
            unlinked.append((path, dest_twin))
        for directory in {p.parent for p, _ in unlinked}:
            fsync_dir(directory)
        fault_point("move:unlinked")
    except BaseException:
        for path, twin in unlinked:
            for a, b in ((twin, path), (attestation_path(twin), attestation_path(path))):
                with suppress(OSError):
                    os.link(a, b)
        raise

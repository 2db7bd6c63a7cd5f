"""Bulk import of a directory of packages (e.g. a conda-index tree) through the pipeline.

Reading, hashing and checking run in worker processes (both cores); plugin checks and the
catalog commits run in this process, one short transaction each; repodata is rebuilt once per
subdir at the end, not once per file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from repoproxy.errors import RepoproxyError
from repoproxy.models import PackageRecord
from repoproxy.names import EXTENSIONS, is_package_filename, is_subdir
from repoproxy.pipeline.ingest import AuditHook, Prepared, Rules, prepare_file
from repoproxy.storage.store import fsync_files

if TYPE_CHECKING:
    from repoproxy.pipeline.ingest import Ingestor

#: files per commit transaction: short enough for readers, long enough to amortise fsyncs
BATCH = 200
#: files per task sent to a worker process: one task per file cost the parent more in
#: pickling and wake-ups than the commit of the file
CHUNK = 16


@dataclass
class ImportResult:
    added: list[PackageRecord] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_packages(directory: Path) -> list[tuple[Path, str | None]]:
    """Package files under ``directory`` with their subdir hint (their folder's name): by
    extension (files whose names do not parse are skipped by :func:`prepare_chunk`)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        hint = Path(root).name if is_subdir(Path(root).name) else None
        # by extension here; the full name check (rattler's parsers, ~0.1 ms a name) runs in
        # the workers, which skip the files it refuses (prepare_chunk)
        found += [(Path(root) / f, hint) for f in sorted(files) if f.endswith(EXTENSIONS)]
    return found


def prepare_chunk(items: list[tuple[Path, str | None]], tmp_dir: Path, rules: Rules,
                  link: bool) -> list[Prepared | RepoproxyError | None]:
    """:func:`prepare_file` for several files in a worker; a refused file's error is returned
    in its place (the others go on), None for a file whose name is no package name."""
    out: list[Prepared | RepoproxyError | None] = []
    for src, hint in items:
        if not is_package_filename(src.name):
            out.append(None)  # not a package file name: skipped, as it always was
            continue
        try:
            out.append(prepare_file(src, tmp_dir, rules, hint, sync=False, link=link))
        except RepoproxyError as e:
            out.append(e)
    return out


def import_packages(
    ingestor: Ingestor,
    channel_name: str,
    files: list[tuple[Path, str | None]],
    *,
    force: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    uploader: str | None = "import",
    audit: AuditHook | None = None,
    link: bool = False,
) -> ImportResult:
    """Import ``files`` (``(path, subdir hint)``); ``link``: hard-link them into the channel
    where possible instead of copying (see :func:`~repoproxy.pipeline.ingest.prepare_file`)."""
    services = ingestor.runtime
    channel = services.catalog().require_channel(channel_name)
    rules = Rules.from_settings(services.settings)
    tmp_dir = services.store.tmp_dir
    workers = workers or services.settings["repoproxy.workers"] or os.cpu_count() or 1
    result = ImportResult()

    batch: list[tuple[Prepared, Path]] = []

    def _flush() -> None:
        """Plugin checks, then one short transaction for the whole batch."""
        ready = []
        # the workers wrote without fsync: the whole batch is synced here at once, before
        # any file is renamed into the channel and committed
        fsync_files(prepared.tmp_path for prepared, _ in batch)
        for prepared, src in batch:
            try:
                ingestor.check(channel, prepared)
                ready.append(prepared)
            except RepoproxyError as e:
                result.failed.append((src, e.message))
        sources = {id(p): src for p, src in batch}
        try:
            records, errors = ingestor.commit_many(channel, ready, force=force,
                                                   uploader=uploader, audit=audit)
            result.added.extend(records)
            result.skipped.extend((sources[id(p)], e.message) for p, e in errors)
        finally:
            for prepared, _ in batch:
                prepared.tmp_path.unlink(missing_ok=True)
            batch.clear()

    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future[list[Prepared | RepoproxyError | None]], list[Path]] = {}
        queue = list(files)
        queue.reverse()
        # bounded in-flight work: temporary copies never pile up on disk; a whole batch
        # more than the workers need, so that they go on while this process commits one
        while queue or pending:
            while queue and len(pending) * CHUNK < workers * 8 + BATCH:
                chunk = [queue.pop() for _ in range(min(CHUNK, len(queue)))]
                pending[pool.submit(prepare_chunk, chunk, tmp_dir, rules, link)] = [
                    src for src, _ in chunk]
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                sources = pending.pop(fut)
                for src, prepared in zip(sources, fut.result(), strict=True):
                    if prepared is None:
                        continue
                    if isinstance(prepared, RepoproxyError):
                        result.failed.append((src, prepared.message))
                    else:
                        batch.append((prepared, src))
                if progress:
                    progress(len(sources))
            if len(batch) >= BATCH:
                _flush()
        _flush()
    if result.added:
        ingestor.publish(channel, result.added)
    return result

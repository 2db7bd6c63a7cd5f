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
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.pipeline.ingest import AuditHook, Prepared, Rules, prepare_file
from repoproxy.storage.store import fsync_files

if TYPE_CHECKING:
    from repoproxy.pipeline.ingest import Ingestor

#: files per commit transaction: short enough for readers, long enough to amortise fsyncs
BATCH = 200


@dataclass
class ImportResult:
    added: list[PackageRecord] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_packages(directory: Path) -> list[tuple[Path, str | None]]:
    """Package files under ``directory`` with their subdir hint (their folder's name)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        hint = Path(root).name if is_subdir(Path(root).name) else None
        found += [(Path(root) / f, hint) for f in sorted(files) if is_package_filename(f)]
    return found


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
) -> ImportResult:
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
        pending: dict[Future[Prepared], Path] = {}
        queue = list(files)
        queue.reverse()
        # bounded in-flight work: temporary copies never pile up on disk
        while queue or pending:
            while queue and len(pending) < workers * 8:
                src, hint = queue.pop()
                pending[pool.submit(prepare_file, src, tmp_dir, rules, hint,
                                    sync=False)] = src
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                src = pending.pop(fut)
                try:
                    batch.append((fut.result(), src))
                except RepoproxyError as e:
                    result.failed.append((src, e.message))
                if progress:
                    progress(1)
            if len(batch) >= BATCH:
                _flush()
        _flush()
    if result.added:
        ingestor.publish(channel, result.added)
    return result

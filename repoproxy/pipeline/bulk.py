"""Bulk import of a directory of packages (e.g. a conda-index tree) through the pipeline.

Reading, hashing and checking run in worker processes (both cores); plugin checks and the
catalog commits run in this process, one short transaction each; repodata is rebuilt once per
subdir at the end, not once per file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ThreadPoolExecutor,
    wait,
)
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from repoproxy.errors import RepoproxyError
from repoproxy.models import PackageRecord
from repoproxy.names import EXTENSIONS, is_package_filename, is_subdir
from repoproxy.pipeline.ingest import AuditHook, Prepared, Rules, prepare_file
from repoproxy.pipeline.processes import worker_pool
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

    def _check(items: list[tuple[Prepared, Path]]) -> list[Prepared]:
        """The plugin checks of a batch (its files syncing meanwhile): the files they pass."""
        ready = []
        for prepared, src in items:
            try:
                ingestor.check(channel, prepared)
                ready.append(prepared)
            except RepoproxyError as e:
                result.failed.append((src, e.message))
        return ready

    def _commit(items: list[tuple[Prepared, Path]], ready: list[Prepared],
                synced: Future[None]) -> None:
        """One short transaction for a batch, once its files are on disk."""
        try:
            # the workers wrote without fsync: nothing is renamed into the channel and
            # committed before the whole batch is synced
            synced.result()
            sources = {id(p): src for p, src in items}
            records, errors = ingestor.commit_many(channel, ready, force=force,
                                                   uploader=uploader, audit=audit)
            result.added.extend(records)
            result.skipped.extend((sources[id(p)], e.message) for p, e in errors)
        finally:
            for prepared, _ in items:
                prepared.tmp_path.unlink(missing_ok=True)

    # a batch's files are fsynced in the background while the workers' next results come in
    # (the sync is disk time, ~0.1 ms a file here, which this process used to wait out); the
    # batch is committed once they are synced, before the next batch starts syncing
    syncing: tuple[list[tuple[Prepared, Path]], list[Prepared], Future[None]] | None = None
    with worker_pool(workers) as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="batch-sync") as syncer:
        pending: dict[Future[list[Prepared | RepoproxyError | None]], list[Path]] = {}
        try:
            queue = list(files)
            queue.reverse()
            # bounded in-flight work: temporary copies never pile up on disk (the files read
            # and not yet committed: a batch syncing, the next one, what the workers hold);
            # a whole batch more than the workers need, so that they go on meanwhile
            while queue or pending or batch or syncing:
                while queue and len(pending) * CHUNK + len(batch) < workers * 8 + BATCH:
                    chunk = [queue.pop() for _ in range(min(CHUNK, len(queue)))]
                    pending[pool.submit(prepare_chunk, chunk, tmp_dir, rules, link)] = [
                        src for src, _ in chunk]
                if pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                else:
                    done = set()
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
                if syncing is not None and (syncing[2].done() or not pending):
                    committing, syncing = syncing, None
                    _commit(*committing)
                if syncing is None and batch and (len(batch) >= BATCH or not pending):
                    # held as syncing before the checks run: an error in one removes them
                    syncing = (batch, [], syncer.submit(
                        fsync_files, [p.tmp_path for p, _ in batch]))
                    batch = []
                    syncing[1].extend(_check(syncing[0]))
        finally:
            # an error: what was received and not committed goes, and what the workers
            # still read (the pool's exit waits for them)
            left = [p for p, _ in [*batch, *(syncing[0] if syncing else [])]]
            for fut in pending:
                with suppress(Exception):
                    left += [p for p in fut.result() if isinstance(p, Prepared)]
            for prepared in left:
                prepared.tmp_path.unlink(missing_ok=True)
    if result.added:
        ingestor.publish(channel, result.added)
    return result

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

from .errors import RepoproxyError
from .ingest import Prepared, Rules, prepare_file
from .models import PackageRecord
from .names import is_package_filename, is_subdir

if TYPE_CHECKING:
    from .services import Services


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
    services: Services,
    channel_name: str,
    files: list[tuple[Path, str | None]],
    *,
    force: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    uploader: str | None = "import",
) -> ImportResult:
    ingestor = services.ingestor
    channel = services.catalog().require_channel(channel_name)
    rules = Rules.from_settings(services.settings)
    tmp_dir = services.store.tmp_dir
    workers = workers or services.settings["repoproxy.workers"] or os.cpu_count() or 1
    result = ImportResult()

    def _commit(prepared: Prepared, src: Path) -> None:
        try:
            ingestor.check(channel, prepared)
            result.added.append(ingestor.commit(channel, prepared, force=force,
                                                uploader=uploader))
        except RepoproxyError as e:
            (result.skipped if e.status == 409 else result.failed).append((src, e.message))
        finally:
            prepared.tmp_path.unlink(missing_ok=True)

    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future[Prepared], Path] = {}
        queue = list(files)
        # bounded in-flight work: temporary copies never pile up on disk
        while queue or pending:
            while queue and len(pending) < workers * 4:
                src, hint = queue.pop(0)
                pending[pool.submit(prepare_file, src, tmp_dir, rules, hint)] = src
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                src = pending.pop(fut)
                try:
                    prepared = fut.result()
                except RepoproxyError as e:
                    result.failed.append((src, e.message))
                else:
                    _commit(prepared, src)
                if progress:
                    progress(1)
    if result.added:
        ingestor.publish(channel, result.added)
    return result

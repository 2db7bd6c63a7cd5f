"""Bulk import's batches: each is synced in the background while the workers read on, and
committed only once its files are on disk; an error leaves no temporary file behind and no
file of an uncommitted batch in the channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from repoproxy.domain.channels import create_channel
from repoproxy.domain.packages import import_files
from repoproxy.pipeline import bulk
from repoproxy.pipeline.ingest import Ingestor
from repoproxy.testing.packages import PackageSpec, build_package

FILES = 11


def _sources(pkgdir: Path) -> list[tuple[Path, str | None]]:
    for i in range(FILES):
        build_package(PackageSpec(f"bulk{i}", "1.0"), pkgdir / "noarch", "conda")
    return bulk.find_packages(pkgdir)


def _served(services: Any) -> set[str]:
    repodata = services.store.subdir_dir("bulk", "noarch") / "repodata.json"
    return set(json.loads(repodata.read_text())["packages.conda"])


def test_every_batch_is_synced_before_it_is_committed(
        services: Any, pkgdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: set[Path] = set()
    batches: list[int] = []
    real_sync, real_commit = bulk.fsync_files, Ingestor.commit_many

    def sync(paths: Any) -> None:
        paths = list(paths)
        real_sync(paths)
        synced.update(paths)

    def commit_many(self: Ingestor, channel: Any, items: list[Any], **kw: Any) -> Any:
        assert all(p.tmp_path in synced for p in items), "committed before it was synced"
        batches.append(len(items))
        return real_commit(self, channel, items, **kw)

    monkeypatch.setattr(bulk, "BATCH", 3)  # several batches, the next syncing beside a commit
    monkeypatch.setattr(bulk, "CHUNK", 2)
    monkeypatch.setattr(bulk, "fsync_files", sync)
    monkeypatch.setattr(Ingestor, "commit_many", commit_many)
    create_channel(services, "bulk")
    result = import_files(services, "bulk", _sources(pkgdir), workers=1)
    assert len(result.added) == FILES
    assert not result.failed
    assert not result.skipped
    assert sum(batches) == FILES
    assert len(batches) >= 2  # (a batch grows while the one before it syncs)
    assert len(_served(services)) == FILES
    assert list(services.store.tmp_dir.iterdir()) == []


def test_a_failed_commit_leaves_no_temporary_file_and_nothing_half_imported(
        services: Any, pkgdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_commit = Ingestor.commit_many
    calls: list[int] = []

    def commit_many(self: Ingestor, channel: Any, items: list[Any], **kw: Any) -> Any:
        calls.append(len(items))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_commit(self, channel, items, **kw)

    monkeypatch.setattr(bulk, "BATCH", 3)
    monkeypatch.setattr(bulk, "CHUNK", 2)
    monkeypatch.setattr(Ingestor, "commit_many", commit_many)
    create_channel(services, "bulk")
    with pytest.raises(OSError, match="No space left"):
        import_files(services, "bulk", _sources(pkgdir), workers=1)
    assert list(services.store.tmp_dir.iterdir()) == []
    # the first batch is committed; nothing of the failed one or later is in the channel
    stored = {p.name for p in services.store.subdir_dir("bulk", "noarch").glob("*.conda")}
    names = {rec.filename for rec in services.catalog().packages("bulk")}
    assert stored == names
    assert len(names) == calls[0]
    # the import published nothing (it failed): a later import publishes, the rest is added
    result = import_files(services, "bulk", bulk.find_packages(pkgdir), workers=1)
    assert len(result.added) == FILES - calls[0]
    assert len(result.skipped) == calls[0]
    assert len(_served(services)) == FILES

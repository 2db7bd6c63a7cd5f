"""Writing several index files at once: every file whole or as it was, and a failure part way
leaves no temporary file behind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from repoproxy.storage.store import atomic_write_many, fsync_files, replace_many


def _replace_and_sync(items: Iterator[tuple[Path, bytes]]) -> None:
    fsync_files(replace_many(items))


WRITERS = [atomic_write_many, _replace_and_sync]


@pytest.mark.parametrize("write", WRITERS, ids=["atomic_write_many", "replace_many"])
def test_files_are_written_whole(tmp_path: Path, write: Callable[..., None]) -> None:
    (tmp_path / "a.json").write_bytes(b"old")
    write(iter([(tmp_path / "a.json", b"new a"), (tmp_path / "sub" / "b.json", b"new b")]))
    assert (tmp_path / "a.json").read_bytes() == b"new a"
    assert (tmp_path / "sub" / "b.json").read_bytes() == b"new b"
    assert not list(tmp_path.rglob(".tmp-*"))


@pytest.mark.parametrize("write", WRITERS, ids=["atomic_write_many", "replace_many"])
def test_a_failure_while_staging_changes_nothing_and_leaves_no_temporary_file(
        tmp_path: Path, write: Callable[..., None]) -> None:
    (tmp_path / "a.json").write_bytes(b"old")

    def items() -> Iterator[tuple[Path, bytes]]:
        yield tmp_path / "a.json", b"new a"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write(items())
    assert (tmp_path / "a.json").read_bytes() == b"old"
    assert not list(tmp_path.rglob(".tmp-*"))

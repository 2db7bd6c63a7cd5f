"""The access generation's stamp: a counter written in place, read from a shared mapping.

Every request compares it, so a reader must see another process's change on its very next
read, without a system call; a file replaced (made by another user) is seen within the
reader's re-check interval, and by this process's own readers at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repoproxy.storage import generation
from repoproxy.storage.generation import SIZE, StampReader, bump, read_stamp


def bump_in_another_process(path: Path) -> None:
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from repoproxy.storage.generation import bump; bump(Path(sys.argv[1]))",
                    str(path)], check=True, timeout=60)


def test_a_change_by_another_process_is_seen_on_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db.generation"
    reader = StampReader(path, recheck=3600)  # the path is not looked at again: the mapping
    assert reader.read() == 0  # no file yet
    bump(path)
    first = reader.read()
    assert first == read_stamp(path) > 0
    seen = {first}
    for _ in range(3):
        bump_in_another_process(path)
        now = reader.read()
        assert now not in seen, "a change in place was not seen through the mapping"
        assert now == read_stamp(path)
        seen.add(now)


def test_changes_within_one_clock_tick_still_differ(tmp_path: Path) -> None:
    path = tmp_path / "stamp"
    reader = StampReader(path)
    values = []
    for _ in range(200):
        bump(path)
        values.append(reader.read())
    assert len(set(values)) == len(values)
    assert path.stat().st_size >= SIZE


def test_a_stamp_file_of_the_old_format_is_taken_over(tmp_path: Path) -> None:
    """Before the counter, the stamp's mtime was the generation and its text a comment."""
    path = tmp_path / "stamp"
    path.write_bytes(b"access generation: its mtime changes on every change\n")
    reader = StampReader(path, recheck=3600)
    before = reader.read()
    bump(path)
    assert reader.read() != before


def test_a_replaced_file_is_seen_within_the_recheck_and_at_once_by_its_replacer(
        tmp_path: Path) -> None:
    path = tmp_path / "stamp"
    bump(path)
    other = StampReader(path, recheck=0.2)  # as another process's reader would
    before = other.read()
    # what a bump does when this process may not write the file: a new file, renamed over
    generation._replace(path)
    mine = StampReader(path, recheck=3600)
    assert mine.read() != before
    deadline = time.monotonic() + 10
    while other.read() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert other.read() == read_stamp(path) != before


def test_this_processes_readers_see_its_own_replacement_at_once(tmp_path: Path) -> None:
    path = tmp_path / "stamp"
    bump(path)
    reader = StampReader(path, recheck=3600)
    before = reader.read()
    generation._replace(path)
    assert reader.read() == read_stamp(path) != before


def test_a_stamp_this_process_may_not_write_is_replaced(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Made by another user (the CLI run as root): opening it for writing is refused (faked
    here, as the tests may run as root, who may write any file)."""
    path = tmp_path / "stamp"
    bump(path)
    reader = StampReader(path, recheck=3600)
    before = reader.read()
    real_open = os.open

    def refusing(file: object, flags: int, *args: object) -> int:
        if str(file) == str(path) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)
    bump(path)
    monkeypatch.undo()
    assert reader.read() == read_stamp(path) != before


def test_a_forked_child_reads_on_with_a_lock_of_its_own(tmp_path: Path) -> None:
    """A child forked while another thread held the reader's lock (re-checking the path)
    still reads: the lock it inherited would never be released there."""
    path = tmp_path / "stamp"
    bump(path)
    reader = StampReader(path, recheck=0.0)  # every read re-checks, under the lock
    with reader._lock:  # another thread mid re-check, as the fork happens
        pid = os.fork()
        if pid == 0:  # the child: read, then leave at once
            code = 1
            try:
                code = 0 if reader.read() == read_stamp(path) else 2
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

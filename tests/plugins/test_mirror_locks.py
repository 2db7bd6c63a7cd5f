"""The passive proxy's package locks (repoproxy_mirror/locks.py), with real files and a real
second process: one name's lock excludes every other thread and process, other names go on."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from repoproxy_mirror.locks import FETCH_LOCK, name_offset, package_lock

HOLDER = """
import sys
from pathlib import Path
from repoproxy_mirror.locks import package_lock
release = package_lock(Path(sys.argv[1]), sys.argv[2], blocking=True)
print("held", flush=True)
sys.stdin.readline()
"""

linux = pytest.mark.skipif(sys.platform != "linux", reason="OFD locks: Linux only")


@linux
def test_a_name_held_by_another_process_is_held_here_and_other_names_are_free(
        tmp_path: Path) -> None:
    pkgs = tmp_path / "linux-64" / "pkgs"  # made by the first lock
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(pkgs), "a-1.0-0.conda"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline() == "held\n"
        assert package_lock(pkgs, "a-1.0-0.conda", blocking=False) is None
        for other in ("a-1.0-1.conda", "b-1.0-0.conda", "a-1.0-0.tar.bz2"):
            release = package_lock(pkgs, other, blocking=False)
            assert release is not None, other
            release()
        child.stdin.close()  # the holder ends: its lock goes with its open file
        child.wait(10)
    release = package_lock(pkgs, "a-1.0-0.conda", blocking=False)
    assert release is not None
    release()
    assert [p.name for p in pkgs.iterdir()] == [FETCH_LOCK]  # one file, whatever the names


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    """OFD locks belong to the open file, not to the process (as classic fcntl locks do):
    a second thread waits for the first one's release."""
    release = package_lock(tmp_path, "a-1.0-0.conda", blocking=True)
    assert release is not None
    order: list[str] = []

    def waiter() -> None:
        mine = package_lock(tmp_path, "a-1.0-0.conda", blocking=True)
        order.append("second")
        assert mine is not None
        mine()

    t = threading.Thread(target=waiter)
    t.start()
    t.join(0.3)
    assert t.is_alive()  # waiting on the held name
    order.append("first released")
    release()
    t.join(10)
    assert order == ["first released", "second"]
    release()  # a second release does nothing


def test_names_get_distinct_offsets() -> None:
    names = [f"pkg{i}-1.0-{b}.conda" for i in range(2000) for b in range(5)]
    offsets = {name_offset(n) for n in names}
    assert len(offsets) == len(names)
    assert all(0 <= o < 2**62 for o in offsets)


def test_without_ofd_locks_a_lock_file_per_name_does_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where OFD locks are missing (macOS), each name has its own flock-ed file: held for the
    other threads, other names free, released for the next."""
    from repoproxy_mirror import locks

    monkeypatch.setattr(locks, "_OFD", False)
    release = package_lock(tmp_path, "a-1.0-0.conda", blocking=True)
    assert release is not None
    assert package_lock(tmp_path, "a-1.0-0.conda", blocking=False) is None
    other = package_lock(tmp_path, "b-1.0-0.conda", blocking=False)
    assert other is not None
    other()
    release()
    again = package_lock(tmp_path, "a-1.0-0.conda", blocking=False)
    assert again is not None
    again()
    assert sorted(p.name for p in (tmp_path / ".locks").iterdir()) == [
        "a-1.0-0.conda.lock", "b-1.0-0.conda.lock"]

"""The shared failed-login counts (storage/failures.py): fixed windows, bounded size."""

from __future__ import annotations

from pathlib import Path

from repoproxy.storage.failures import TRIM_EVERY, FailureLog


def test_failures_count_within_a_window_and_start_again_after_it(tmp_path: Path) -> None:
    log = FailureLog(tmp_path / "throttle.db", max_rows=100)
    for t in (1000.0, 1001.0, 1002.0):
        log.add(["user:alice"], t, window=10)
    assert log.counts(["user:alice", "user:bob"], 1005.0) == {"user:alice": (3, 1010.0)}
    assert log.counts(["user:alice"], 1010.0) == {}  # the window is over
    log.add(["user:alice"], 1011.0, window=10)
    assert log.counts(["user:alice"], 1011.0) == {"user:alice": (1, 1021.0)}


def test_two_handles_on_one_file_see_each_others_counts(tmp_path: Path) -> None:
    one, two = (FailureLog(tmp_path / "throttle.db", max_rows=100) for _ in range(2))
    one.add(["addr:10.0.0.1"], 1000.0, window=60)
    two.add(["addr:10.0.0.1"], 1001.0, window=60)
    assert one.counts(["addr:10.0.0.1"], 1002.0) == {"addr:10.0.0.1": (2, 1060.0)}


def test_the_table_stays_bounded_whatever_keys_arrive(tmp_path: Path) -> None:
    log = FailureLog(tmp_path / "throttle.db", max_rows=50)
    for n in range(3 * TRIM_EVERY):
        log.add([f"user:{'x' * 5000}{n}"], 1000.0 + n / 1000, window=3600)
    assert log.rows() <= 50 + TRIM_EVERY
    # the windows that end soonest went first: the newest failures are still counted
    assert log.counts([f"user:{'x' * 5000}{3 * TRIM_EVERY - 1}"], 1001.0)
    # ended windows are deleted as failures arrive
    log.add(["user:late"], 10_000.0, window=60)
    assert log.rows() == 1

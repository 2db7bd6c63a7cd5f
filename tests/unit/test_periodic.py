"""The periodic background worker the plugins' workers are built on: it repeats its step,
survives a failing one, stops promptly and runs its last step once."""

from __future__ import annotations

import threading
import time

import pytest

from repoproxy.domain.periodic import PeriodicWorker


class Steps(PeriodicWorker):
    name = "test-steps"

    def __init__(self, interval: float, fail_first: int = 0, **kw: bool) -> None:
        super().__init__(interval, **kw)
        self.ticks = 0
        self.finished = 0
        self.fail_first = fail_first
        self.three = threading.Event()

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks >= 3:
            self.three.set()
        if self.ticks <= self.fail_first:
            raise RuntimeError("a step failed")

    def finish(self) -> None:
        self.finished += 1


def test_steps_repeat_and_a_failing_one_does_not_end_the_worker(
        caplog: pytest.LogCaptureFixture) -> None:
    worker = Steps(0.01, fail_first=2)
    worker.start()
    assert worker.three.wait(10), "the worker stopped after a failing step"
    worker.stop()
    assert worker.finished == 1
    failures = [r for r in caplog.records if "a background step failed" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].name == "repoproxy.domain.periodic"
    assert "test-steps" in failures[0].getMessage()


def test_first_step_waits_one_interval_unless_immediately() -> None:
    late, early = Steps(30.0), Steps(30.0, immediately=True)
    for worker in (late, early):
        worker.start()
    deadline = time.monotonic() + 10
    while early.ticks == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    for worker in (late, early):
        worker.stop()
    # stop() wakes the interval wait at once, never sleeping out the 30 seconds
    assert time.monotonic() - started < 5
    assert (late.ticks, early.ticks) == (0, 1)
    assert (late.finished, early.finished) == (1, 1)

"""glibc heap handling of a serving process (web/heap.py): the trimmer hands back what a big
answer freed, and only when the free heap grew; the arena cap is a setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from repoproxy.errors import ConfigError
from repoproxy.settings import build_settings, raw_settings
from repoproxy.web import heap

pytestmark = pytest.mark.skipif(not heap.HeapTrimmer.available(),
                                reason="glibc only (mallinfo2, malloc_trim)")


def resident() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_the_trimmer_hands_back_freed_heap_once_it_grew_past_the_threshold() -> None:
    trimmer = heap.HeapTrimmer(threshold=16 << 20)
    trimmer.tick()
    assert trimmer.trims == 0  # nothing freed since it started
    # a big answer's garbage: mid-sized strings (malloc, not mmap) of which a few stay alive
    # (as a cache's entries do): the holes between them are freed but stay resident
    garbage = [b"x" * 2000 + i.to_bytes(4, "little") for i in range(40_000)]
    kept = garbage[::16]
    del garbage
    held = heap.free_held()
    assert held > 16 << 20
    before = resident()
    trimmer.tick()
    assert trimmer.trims == 1
    assert resident() < before - (16 << 20)  # the freed pages left the process
    trimmer.tick()
    assert trimmer.trims == 1  # trimmed holes still count as free: no trim without new garbage
    del kept


def test_malloc_arenas_is_a_setting_and_refuses_a_negative_count() -> None:
    def arenas(ini: dict[str, str]) -> int:
        return int(build_settings(raw_settings(ini, {}))["repoproxy.malloc_arenas"])

    assert arenas({}) == 2
    assert arenas({"repoproxy.malloc_arenas": "0"}) == 0
    with pytest.raises(ConfigError, match=r"repoproxy\.malloc_arenas"):
        arenas({"repoproxy.malloc_arenas": "-1"})
    assert heap.limit_arenas(0) is False  # 0 leaves glibc's default alone

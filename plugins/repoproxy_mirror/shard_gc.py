"""Garbage collection of a proxied subdir's shards that its shard index no longer names.

Shards are content-addressed and immutable, so a refresh that changes a package name's records
writes a new shard and leaves the old one unreferenced. A client that read the previous shard
index (or holds it in its HTTP cache for ``repoproxy.index_max_age``) may still ask for the old
shard, so it is kept for a grace period counted from when it stopped being named: at that
moment its mtime is set to now (its write time says nothing about when it was dropped), and a
later build removes it once the mtime is older than the grace period. Each pass removes at most
``limit`` files, so a build never stalls on a huge backlog; the rest go at the next builds.
The caller holds the subdir's refresh lock: no other build writes these shards meanwhile.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

SHARD_RE = re.compile(r"\A([0-9a-f]{64})\.msgpack\.zst\Z")


def mark_dropped(shards: Path, dropped: Iterable[str], now: float) -> None:
    """Start the grace period of shards the new index stops naming."""
    for digest in dropped:
        with suppress(FileNotFoundError):
            os.utime(shards / f"{digest}.msgpack.zst", (now, now))


def collect(shards: Path, named: set[str], grace: float, now: float, limit: int) -> int:
    """Remove unnamed shards whose grace period is over; returns how many went."""
    removed = 0
    try:
        entries = os.scandir(shards)
    except FileNotFoundError:
        return 0
    with entries:
        for entry in entries:
            if removed >= limit:
                break
            match = SHARD_RE.match(entry.name)
            if match is None or match.group(1) in named:
                continue  # temporary files (.tmp-*) are atomic_write's, never ours to remove
            with suppress(FileNotFoundError):
                if entry.stat().st_mtime <= now - grace:
                    Path(entry.path).unlink()
                    removed += 1
    return removed

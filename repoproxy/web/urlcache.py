"""A bound on Pyramid's cache of quoted URL path segments.

``pyramid.traversal.quote_path_segment`` remembers every segment it ever quoted in a
module-level dict that is never emptied (its docstring warns that arbitrary strings make it a
leak). Every ``route_url`` quotes each of its values through it, so a process that lists the
files of big channels keeps one entry per distinct file and package name it ever linked to:
tens of thousands of entries for one 50,000-file listing, growing with the catalog for the
process's life. The function reads the module global at each call, so a dict that forgets its
oldest entries once full, put in its place, bounds it without touching Pyramid's code path.
"""

from __future__ import annotations

from typing import Any

import pyramid.traversal

#: quoted segments kept; re-quoting an evicted one costs about a microsecond
SEGMENTS_KEPT = 4096


class BoundedSegments(dict[Any, str]):
    """A dict that drops its oldest entries (insertion order) beyond ``limit``.

    Safe without a lock, as Pyramid's own dict was: a racing thread can at worst quote a
    segment twice or evict one entry more than needed; ``pop`` with a default never raises.
    """

    def __init__(self, limit: int = SEGMENTS_KEPT) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: Any, value: str) -> None:
        while len(self) >= self.limit:
            oldest = next(iter(self), None)
            if oldest is None:
                break
            self.pop(oldest, None)
        super().__setitem__(key, value)


def bound_segment_cache(limit: int = SEGMENTS_KEPT) -> None:
    """Replace Pyramid's unbounded segment cache with a bounded one (once per process)."""
    if not isinstance(pyramid.traversal._segment_cache, BoundedSegments):
        pyramid.traversal._segment_cache = BoundedSegments(limit)

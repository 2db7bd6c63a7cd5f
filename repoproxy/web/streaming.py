"""JSON answers written while they are produced, for listings of any length.

A listing of a 50,000-file channel is ~150 MB of JSON (plugins add per-file fields); built as
one Python object and then one string it held several times that in memory, and the allocator
kept it after the answer. :func:`json_listing` writes the same document piece by piece from an
iterator, so memory holds one chunk, and hands glibc's freed heap back after a long one. The
status and headers are sent before the items are read: everything that can refuse the request
(access, bad parameters) must be decided before it is called. An error while writing ends the
connection without the closing bracket, so a client sees a broken answer, never a complete-
looking short one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pyramid.response import Response

#: bytes gathered before a piece is handed to the server
CHUNK = 64 * 1024
#: items after which a finished listing hands the freed heap back to the system
TRIM_AFTER = 1000


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None elsewhere (musl, macOS): nothing to do there."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def json_listing(head: Mapping[str, Any], key: str, items: Iterable[Any],
                 tail: Mapping[str, Any] | None = None) -> Response:
    """``{**head, key: [items...], **tail}`` as a streamed ``application/json`` answer."""
    response = Response(content_type="application/json", charset="utf-8")
    response.app_iter = _chunks(head, key, items, tail or {})
    return response


def _chunks(head: Mapping[str, Any], key: str, items: Iterable[Any],
            tail: Mapping[str, Any]) -> Iterator[bytes]:
    opening = json.dumps({**head, key: []})
    parts = [opening[:-2]]  # everything up to the empty list's closing "]}"
    size = len(parts[0])
    first, count = True, 0
    for item in items:
        count += 1
        text = json.dumps(item) if first else ", " + json.dumps(item)
        first = False
        parts.append(text)
        size += len(text)
        if size >= CHUNK:
            yield "".join(parts).encode()
            parts, size = [], 0
    closing = json.dumps(dict(tail))
    parts.append("]" + (", " + closing[1:] if tail else "}"))
    yield "".join(parts).encode()
    if count >= TRIM_AFTER and _TRIM is not None:
        # thousands of short-lived item dicts and strings, made in a server thread, leave
        # glibc's heap holding tens of MB it would keep for the process's life (measured
        # with a 50,000-file listing); giving it back costs a few ms once per long listing
        _TRIM(0)

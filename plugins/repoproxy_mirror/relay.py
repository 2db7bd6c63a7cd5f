"""A first fetch streamed to its client while it is verified and stored.

The client gets the upstream's bytes as they arrive; the same bytes are hashed and written to
a temporary file beside the cache. The last chunk is held back until the whole file is checked
(size and sha256): only a verified file releases its last bytes and is committed (fsync,
rename). On a mismatch, a broken or a too-slow transfer the response ends short of its
Content-Length (the server closes the connection), so the client's own length and checksum
checks fail, and nothing is stored. The file lock taken by the caller is held until the file is
committed or abandoned: other requests for the file wait on it, then read the stored copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from repoproxy.storage.store import fsync_dir

from .upstream import UpstreamError, Verifier

log = logging.getLogger(__name__)


class Relay:
    """A WSGI ``app_iter``: iterate it to relay the file, ``close()`` it always (servers do)."""

    def __init__(self, upstream_response: Any, chunks: Iterator[bytes], check: Verifier,
                 out: IO[bytes], tmp: Path, stored: Path, release: Callable[[], None],
                 done: Callable[[str], None]) -> None:
        self._response = upstream_response
        self._chunks = chunks
        self._check = check
        self._out = out
        self._tmp = tmp
        self._stored = stored
        self._release = release
        self._done = done  # told "miss" once committed, "error" once refused
        self._held = b""
        self._state = "streaming"  # -> "verified" -> "committed" | "abandoned"

    def __iter__(self) -> Relay:
        return self

    def __next__(self) -> bytes:
        if self._state != "streaming":
            if self._state == "verified":
                self._commit()
            raise StopIteration
        try:
            while True:
                chunk = next(self._chunks, None)
                if chunk is None:
                    self._check.finish()
                    self._state = "verified"
                    last, self._held = self._held, b""
                    if last:
                        return last  # committed at the next call or at close()
                    self._commit()
                    raise StopIteration
                if not chunk:
                    continue
                self._check.feed(chunk)
                self._out.write(chunk)
                previous, self._held = self._held, chunk
                if previous:
                    return previous
        except UpstreamError as e:
            log.warning("%s", e.message)
            self._abandon()
            self._done("error")
            # ending short of Content-Length: the server closes the connection and the
            # client's own checks refuse what it got
            raise StopIteration from None

    def close(self) -> None:
        if self._state == "verified":
            self._commit()  # the client has all its bytes; the verified copy is kept
        elif self._state == "streaming":
            self._abandon()  # the client went away mid-way: the next request fetches anew

    def _commit(self) -> None:
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            os.replace(self._tmp, self._stored)
            fsync_dir(self._stored.parent)
        except OSError:
            log.exception("could not store %s", self._stored)
            self._abandon()
            return
        self._state = "committed"
        self._finish()
        self._done("miss")

    def _abandon(self) -> None:
        self._state = "abandoned"
        with suppress(OSError):
            self._out.close()
        with suppress(OSError):
            self._tmp.unlink()
        self._finish()

    def _finish(self) -> None:
        with suppress(Exception):
            self._response.close()
        self._release()

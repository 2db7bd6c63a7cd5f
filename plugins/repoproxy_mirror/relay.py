"""A first fetch streamed to its client while it is verified and stored.

The client gets the upstream's bytes as they arrive; the same bytes are hashed and written to
a temporary file beside the cache. The last chunk is held back until the whole file is checked
(size and sha256): only a verified file releases its last bytes and is committed (fsync,
rename). On a mismatch, a broken or a too-slow transfer the response ends short of its
Content-Length (the server closes the connection), so the client's own length and checksum
checks fail, and nothing is stored. The file lock taken by the caller is held until the file is
committed or abandoned: other requests for the file wait on it, then read the stored copy.

Hashing and writing each run in a thread of their own (hashlib and file writes release the
GIL), so relaying is not slowed down to the disk's pace: measured on the project's machine, a
16 MB package cost ~50 ms to receive, ~90 ms to hash and ~160 ms to write (bench/mirror.py).
Only the hash is waited for before the last chunk; the write is waited for before the commit,
after the client has its bytes. The writer's backlog is bounded (``BACKLOG`` chunks): past it
the relay waits for the disk.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from repoproxy.storage.store import fsync_dir

from .upstream import UpstreamError, Verifier

log = logging.getLogger(__name__)
BACKLOG = 1024  # chunks queued for the writer at most (64 MiB of 64 KiB chunks)


class _Worker:
    """A thread applying ``work`` to each queued chunk until the end marker."""

    def __init__(self, work: Callable[[bytes], object], name: str, bound: int = 0) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(bound)  # None: the end
        self._work = work
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._work(chunk)
                except BaseException as e:  # reported to the relay, which abandons the file
                    self.error = e

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait until every queued chunk is done."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


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
        name = stored.name
        self._hasher = _Worker(check.hash.update, f"mirror-hash-{name}")
        self._writer = _Worker(out.write, f"mirror-write-{name}", BACKLOG)

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
                    self._hasher.finish()
                    self._check.finish()
                    self._state = "verified"
                    last, self._held = self._held, b""
                    if last:
                        return last  # committed at the next call or at close()
                    self._commit()
                    raise StopIteration
                if not chunk:
                    continue
                self._check.count(chunk)
                self._hasher.put(chunk)
                self._writer.put(chunk)
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
            self._writer.finish()
            if self._writer.error is not None:
                raise self._writer.error
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
        self._hasher.finish()
        self._writer.finish()
        with suppress(OSError):
            self._out.close()
        with suppress(OSError):
            self._tmp.unlink()
        self._finish()

    def _finish(self) -> None:
        with suppress(Exception):
            self._response.close()
        self._release()

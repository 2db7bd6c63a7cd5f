"""A first fetch streamed to its client while it is verified and stored.

The client gets the upstream's bytes as they arrive; the same bytes are hashed and written to
a temporary file beside the cache. The file's last byte is held back until the whole file is
checked (size and sha256): only a verified file is delivered whole and committed (fsync,
rename). On a mismatch, a broken or a too-slow transfer the response ends short of its
Content-Length (the server closes the connection), so the client's own length and checksum
checks fail, and nothing is stored. When the size is not known beforehand (no size in the
record, no Content-Length) the last chunk received is held back instead: only the end of the
upstream's answer shows which chunk is the last. The file lock taken by the caller is held
until the file is committed or abandoned: other requests for the file wait on it, then read
the stored copy.

The server's thread receives each chunk from the upstream, counts and hashes it, queues it
for a writer thread (kept between relays) and returns it to the server, which sends it
(``__next__``): a slow client slows the upstream transfer down, no more than one chunk is in
hand, and the writer's backlog is at most ``BACKLOG`` chunks (past it the relay waits for the
disk). Measured on the project's machine (bench/mirror.py, 2 shared cores under load 3-4):
with a reader, a hasher and a writer thread besides the server's, every chunk was three
queue hand-offs and thread wake-ups, and behind a 100 MB/s link (chunks are what one network
read returns, some tens of KiB) the proxy spent 5.5-6.5 ms of CPU per MB against 4.4 ms done
here, its first fetches of 1 MB took 1.5-1.8x the direct one in a wide spread (0.8-4.3x)
against 1.3x here (1.1-1.7x); on the bare loopback, where receiving and sending in parallel
could pay, the two were alike (3.0-3.2x). The commit (the writes finished, fsync, rename)
runs after the client has its bytes, on a helper thread (the connection is free for its next
request at once).
"""

from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from repoproxy.storage.store import fsync_dir

from .upstream import UpstreamError, Verifier

log = logging.getLogger(__name__)
BACKLOG = 256  # chunks queued for the writer at most (64 MiB of 256 KiB chunks)


class _Threads:
    """Daemon threads kept between relays: starting a relay's threads per first fetch cost
    1-4 ms under load (``Thread.start`` waits until the new thread runs). A thread is made
    only when none is idle. Daemon threads (unlike ``ThreadPoolExecutor``'s, which the interpreter
    joins at exit) never hold up a server's shutdown mid-relay."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self.made = 0  # threads made so far
        self._lock = threading.Lock()

    def run(self, work: Callable[[], None]) -> None:
        with self._lock:
            spawn = not self._idle
            if spawn:
                self.made += 1
            else:
                self._idle -= 1  # that thread takes this work (or another's, same thing)
        self._work.put(work)
        if spawn:
            threading.Thread(target=self._loop, name=f"mirror-relay-{self.made}",
                             daemon=True).start()

    def _loop(self) -> None:
        while True:
            work = self._work.get()
            try:
                work()
            except BaseException:  # the work reports its own errors; the thread stays
                log.exception("mirror relay thread")
            with self._lock:
                self._idle += 1


threads = _Threads()


class _Worker:
    """A kept thread applying ``work`` to each queued chunk until the end marker."""

    def __init__(self, work: Callable[[bytes], object], bound: int = 0) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(bound)  # None: the end
        self._work = work
        self.error: BaseException | None = None
        self._finished = False
        self._done = threading.Event()
        threads.run(self._run)

    def _run(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if self.error is None:
                    try:
                        self._work(chunk)
                    except BaseException as e:  # reported to the relay: it abandons the file
                        self.error = e
        finally:
            self._done.set()

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait until every queued chunk is done."""
        if not self._finished:
            self._finished = True
            self._queue.put(None)
            self._done.wait()


class Relay:
    """A WSGI ``app_iter``: iterate it to relay the file, ``close()`` it always (servers do)."""

    def __init__(self, upstream_response: Any, chunks: Iterator[bytes], check: Verifier,
                 stored: Path, release: Callable[[], None],
                 done: Callable[[str], None]) -> None:
        self._response = upstream_response
        self._chunks = chunks
        self._check = check
        # the temporary file beside ``stored``, made by the writer thread with its first
        # chunk: creating a file took 0.5-0.8 ms on the project's machine, before the first
        # byte when the server's thread made it
        self._out: IO[bytes] | None = None
        self._tmp: Path | None = None
        self._stored = stored
        self._release = release
        self._done = done  # told "miss" once committed, "error" once refused
        self._held = b""
        # bytes still to come before the held-back last one (None: the size is not known)
        self._before_last = None if check.size is None else check.size - 1
        # -> "verified" -> "committing" -> "committed" | "abandoned"
        self._state = "streaming"
        self._writer = _Worker(self._write, BACKLOG)

    def _write(self, chunk: bytes) -> None:
        """The writer thread's work (and the commit's, with nothing to write)."""
        if self._out is None:
            fd, name = tempfile.mkstemp(dir=self._stored.parent, prefix=".dl-")
            self._tmp = Path(name)
            self._out = os.fdopen(fd, "wb")
        if chunk:
            self._out.write(chunk)

    def __iter__(self) -> Relay:
        return self

    def __next__(self) -> bytes:
        if self._state != "streaming":
            if self._state == "verified":
                self._commit_later()
            raise StopIteration
        try:
            chunk = self._next_chunk()
        except UpstreamError as e:
            log.warning("%s", e.message)
        except Exception:
            log.exception("relay of %s failed", self._stored.name)
        else:
            if chunk:
                return chunk
            self._commit_later()  # verified, and nothing held back: an empty file
            raise StopIteration
        self._abandon()
        self._done("error")
        # ending short of Content-Length: the server closes the connection and the client's
        # own checks refuse what it got
        raise StopIteration

    def _next_chunk(self) -> bytes:
        """The next bytes received, short of the held-back end (the file's last byte, or with
        no size known the latest chunk); at the end, once the whole file is verified, the
        held-back end. Raises what ended the transfer."""
        for item in self._chunks:
            if not item:
                continue
            self._check.feed(item)
            self._writer.put(item)
            if self._before_last is None:  # the size is not known: hold the latest chunk
                previous, self._held = self._held, item
                if previous:
                    return previous
                continue
            if len(item) <= self._before_last:
                self._before_last -= len(item)
                return item
            # the chunk that ends the file (the count refused more bytes than that)
            cut, self._before_last = self._before_last, 0
            self._held = item[cut:]
            if cut:
                return item[:cut]
        self._check.finish()
        self._response.close()
        self._state = "verified"
        last, self._held = self._held, b""
        return last  # committed at the next call or at close()

    def close(self) -> None:
        if self._state == "verified":
            self._commit_later()  # the client has all its bytes: the copy is kept
        elif self._state == "streaming":
            self._abandon()  # the client went away mid-way: the next request fetches anew

    def _commit_later(self) -> None:
        """The client has every byte: the commit (the writes finished, fsync, rename) runs on
        a helper thread, so that the connection's next request does not wait for the disk
        (an fsync took 5-130 ms on the project's machine). The file's lock is held until it
        is done: a request for the same file meanwhile waits for the stored copy."""
        self._state = "committing"
        threads.run(self._commit)

    def _commit(self) -> None:
        try:
            self._writer.finish()
            if self._writer.error is not None:
                raise self._writer.error
            self._write(b"")  # an empty file: no chunk made it
            assert self._out is not None
            assert self._tmp is not None
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
        self._done("miss")  # before the lock goes: whoever waited on it sees the count
        self._release()

    def _abandon(self) -> None:
        self._state = "abandoned"
        with suppress(Exception):
            self._response.close()
        self._writer.finish()  # no more writes: the temporary file is made or never will be
        if self._out is not None:
            with suppress(OSError):
                self._out.close()
        if self._tmp is not None:
            with suppress(OSError):
                self._tmp.unlink()
        self._release()

"""The watch worker: a watchdog observer for prompt reactions, a periodic scan as the truth.

Events can be missed (inotify queue overflows, network filesystems, files dropped while the
server was down), so every decision is taken from a scan of the folder; an event only makes
the next scan come sooner, and a rename into the folder marks the file as complete. One
worker processes a root at a time (``<root>/.lock``): a second one, say `repoproxy watch`
beside `repoproxy serve`, waits as a standby.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from . import folder, state
from .batcher import Batcher
from .config import WatchConfig
from .tracker import Tracker

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

log = logging.getLogger(__name__)

#: at most this often a scan is started by events (a burst sends thousands)
MIN_SCAN_GAP = 0.1
#: how often folders are created for channels that exist
CHANNEL_SYNC = 30.0


class _Events(FileSystemEventHandler):
    def __init__(self, worker: WatchWorker) -> None:
        self.worker = worker

    def dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileMovedEvent) and event.dest_path:
            self.worker.tracker.moved_in(Path(str(event.dest_path)))
        self.worker.wake()


class WatchWorker:
    """``start()``/``stop()`` for `repoproxy serve`; :meth:`run` for the foreground."""

    def __init__(self, services: Core, config: WatchConfig) -> None:
        self.services = services
        self.config = config
        self.tracker = Tracker(config.quiet_seconds)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_scan = self._next_sync = -float("inf")

    def __repr__(self) -> str:
        return f"<WatchWorker {self.config.root}>"

    # --- background (serve) ----------------------------------------------------------------
    def start(self) -> None:
        self.config.root.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._thread_main, name="repoproxy-watch",
                                        daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler); :meth:`stop` also waits."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("watch worker still busy after %.0f s; leaving it", timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _thread_main(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("watch worker crashed")

    # --- the loop ----------------------------------------------------------------------------
    def run(self, *, until_idle: bool = False, timeout: float | None = None) -> bool:
        """Process the folder until :meth:`stop` (or, with ``until_idle``, until nothing is
        left to do). Returns False if ``timeout`` passed or another worker holds the root."""
        deadline = None if timeout is None else time.monotonic() + timeout
        lock = self._acquire(wait=not until_idle, deadline=deadline)
        if lock is None:
            return False
        observer = None if until_idle else self._observe()
        batcher = Batcher(self.services, self.config, self.tracker)
        try:
            return self._loop(batcher, until_idle, deadline)
        finally:
            batcher.close()
            batcher.save()
            if observer is not None:
                observer.stop()
                observer.join(5)
            state.unlock(lock)

    def _acquire(self, *, wait: bool, deadline: float | None) -> int | None:
        warned = False
        while not self._stop.is_set():
            fd = state.try_lock(self.config)
            if fd is not None:
                state.mark_started(self.services.db())
                log.info("watching %s", self.config.root)
                return fd
            if not wait or (deadline is not None and time.monotonic() > deadline):
                return None
            if not warned:
                log.warning("another worker processes %s; waiting as a standby",
                            self.config.root)
                warned = True
            self._stop.wait(max(self.config.poll_interval, 1.0))
        return None

    def _observe(self) -> Any:
        # watchdog warns when a new folder's watch races with its own recursive set-up ("it
        # will be overwritten" by the same callback): harmless, but under an error filter it
        # would kill the observer thread
        warnings.filterwarnings("ignore", message="Callback with id", category=RuntimeWarning,
                                module=r"watchdog\.")
        try:
            try:  # full events report a file moved in from outside as a move, not a create
                observer = Observer(generate_full_events=True)  # type: ignore[call-arg]
            except TypeError:
                observer = Observer()
            observer.schedule(_Events(self), str(self.config.root), recursive=True,
                              event_filter=[FileCreatedEvent, FileMovedEvent, FileClosedEvent,
                                            DirCreatedEvent, DirMovedEvent])
            observer.start()
        except Exception:
            log.exception("watch: no filesystem events for %s; scanning every %.1f s",
                          self.config.root, self.config.poll_interval)
            return None
        return observer

    def _loop(self, batcher: Batcher, until_idle: bool, deadline: float | None) -> bool:
        self._last_scan = self._next_sync = -float("inf")
        while not self._stop.is_set():
            try:
                if self._round(batcher) and until_idle:
                    return True
            except Exception:
                # the catalog stayed locked, the disk is full...: the files wait in the folder
                log.exception("watch: a round failed; trying again")
                self._stop.wait(self.config.poll_interval)
                continue
            if deadline is not None and time.monotonic() > deadline:
                return False
            self._pause(batcher, self._last_scan)
        return not until_idle

    def _round(self, batcher: Batcher) -> bool:
        """Scan if due, hand ready files over, commit due batches; True when all is done."""
        now = time.monotonic()
        if now >= self._next_sync:
            self._create_channel_folders()
            self._next_sync = now + CHANNEL_SYNC
        if now - self._last_scan >= self.config.poll_interval or (
                self._wake.is_set() and now - self._last_scan >= MIN_SCAN_GAP):
            self._wake.clear()
            self.tracker.observe(folder.scan(self.config))
            self._last_scan = now
        ready = self.tracker.ready()
        if ready and batcher.capacity:
            batcher.take(ready, {ch.name for ch in self.services.catalog().list_channels()})
        batcher.collect(timeout=0)
        idle = not batcher.in_flight and not self.tracker.waiting()
        for name in batcher.due(idle):
            batcher.flush(name)
        batcher.publish_due(idle)
        batcher.save()
        batcher.release_idle_pool()
        return (idle and not batcher.prepared and not batcher.unpublished
                and not self.tracker.files)

    def _pause(self, batcher: Batcher, last_scan: float) -> None:
        """Sleep until the next thing to do: a scan, a file's quiet time, a batch, a result."""
        now = time.monotonic()
        waits = [last_scan + self.config.poll_interval - now, batcher.next_due_in()]
        if batcher.capacity:  # else only a finished preparation makes room
            waits.append(self.tracker.next_ready_in())
        if self._wake.is_set():
            waits.append(last_scan + MIN_SCAN_GAP - now)
        pause = min(max(0.0, min(w for w in waits if w is not None)), self.config.poll_interval)
        if batcher.in_flight:  # a finished reading is the likeliest next thing: wake for it
            batcher.collect(timeout=max(pause, 0.05))
        elif self._wake.is_set():
            self._stop.wait(pause)
        else:
            self._wake.wait(pause)

    def _create_channel_folders(self) -> None:
        """A folder per existing channel, so users see where to drop files."""
        try:
            for channel in self.services.catalog().list_channels():
                (self.config.root / channel.name).mkdir(parents=True, exist_ok=True)
        except Exception:
            log.exception("watch: could not create channel folders under %s", self.config.root)

"""Complete files through the one ingest pipeline, in batches.

Reading, hashing and the core checks (:func:`repoproxy.ingest.prepare_file`, which copies the
file into ``<repoproxy.root>/tmp`` first) run in worker processes on every core. Prepared
files wait per channel until ``batch_size`` are ready, nothing else is on its way, or the
oldest has waited ``batch_wait`` seconds; then plugin checks and one commit transaction for
the whole batch. The batches of a burst are published together (one repodata build per
subdir) once nothing else is on its way, or once the first of them has waited
``batch_wait`` seconds. A source file leaves the folder only after its commit, so a crash at
any instant leaves it in the folder or in the channel (and a file found again that is already
in the channel with the same sha256 is simply done).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from repoproxy.domain.packages import upload_audit
from repoproxy.errors import NotFound, RepoproxyError
from repoproxy.models import Channel, PackageRecord
from repoproxy.pipeline.ingest import Prepared, Rules, prepare_file
from repoproxy.pipeline.processes import worker_pool
from repoproxy.storage.store import fsync_files

from . import folder, state
from .config import PREFIX, WatchConfig
from .tracker import Seen, Tracker

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

log = logging.getLogger(__name__)

#: seconds without work after which the reading processes are let go (memory of a quiet server)
POOL_IDLE = 60.0


class Batcher:
    def __init__(self, services: Core, config: WatchConfig, tracker: Tracker) -> None:
        self.services = services
        self.config = config
        self.tracker = tracker
        self.rules = Rules.from_settings(services.settings)
        self.delta = state.Delta()
        self.in_flight: dict[Future[Prepared], Seen] = {}
        self.prepared: dict[str, list[tuple[Seen, Prepared]]] = defaultdict(list)
        self._oldest: dict[str, float] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._last_used = 0.0
        #: per channel: the records committed and not yet published, since when
        self.unpublished: dict[str, tuple[Channel, list[PackageRecord], float]] = {}

    # --- taking files -----------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """How many more files may be handed to the processes. Bounded (temporary copies do not
        pile up), but a batch ahead: the processes keep reading while a batch is published."""
        limit = max(self.config.workers * 8, self.config.batch_size)
        return max(0, limit - len(self.in_flight))

    def take(self, ready: list[Seen], channels: set[str]) -> None:
        """Hand ready files to the processes. A file that was being read when a process died
        is read alone, so that one poisonous file cannot take innocent ones down with it."""
        if any(s.suspect for s in self.in_flight.values()):
            return
        suspects = [s for s in ready if s.suspect]
        if suspects:
            if not self.in_flight:
                self.dispatch(suspects[0], channels)
            return
        for seen in ready[: self.capacity]:
            self.dispatch(seen, channels)

    def dispatch(self, seen: Seen, channels: set[str]) -> None:
        """Refuse a file at once if its place is wrong, else start preparing it."""
        cand = seen.cand
        if cand.problem is not None:
            self.reject(seen, cand.problem, code="layout")
            return
        assert cand.channel is not None
        if cand.channel not in channels and not self.config.create_channels:
            self.reject(seen, f"channel {cand.channel!r} does not exist: create it (repoproxy "
                              f"channel create {cand.channel}) or set {PREFIX}create_channels "
                              "= true", code="no-channel")
            return
        seen.busy = True
        # sync=False (positional: the expected sha256 and file name are None): a batch's
        # temporary files are fsynced together in _commit
        future = self._executor().submit(prepare_file, cand.path, self.services.store.tmp_dir,
                                         self.rules, cand.subdir, None, None, False)
        self.in_flight[future] = seen

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # never fork a threaded server (waitress, watchdog and SQLite threads): the
            # processes start from a clean interpreter
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods
                                              else "spawn")
            # workers that end with this process (a killed server left them waiting)
            self._pool = worker_pool(self.config.workers, ctx)
        self._last_used = time.monotonic()
        return self._pool

    def release_idle_pool(self) -> None:
        if (self._pool is not None and not self.in_flight
                and time.monotonic() - self._last_used > POOL_IDLE):
            self._pool.shutdown(wait=False)
            self._pool = None

    def collect(self, timeout: float) -> None:
        """Take the results of finished preparations (waiting up to ``timeout`` for one)."""
        if not self.in_flight:
            return
        done, _ = wait(list(self.in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            self._result(future, self.in_flight.pop(future))

    def _result(self, future: Future[Prepared], seen: Seen) -> None:
        cand = seen.cand
        try:
            prepared = future.result()
        except RepoproxyError as e:
            if self._still_settling(seen):
                seen.since = time.monotonic()  # not its final bytes: wait the quiet time again
                self.tracker.release(seen)
            else:
                self.reject(seen, e.message, code=e.code, reasons=e.reasons or None)
            return
        except FileNotFoundError:
            self.tracker.forget(seen)  # taken away meanwhile
            return
        except BrokenProcessPool as e:
            if self._pool is not None:  # a process died (killed, out of memory): start anew
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            if seen.suspect:
                self._unexpected(seen, e)  # it was read alone: it is the one
            else:
                seen.suspect = True
                self.tracker.release(seen)
            return
        except Exception as e:
            self._unexpected(seen, e)
            return
        if self.tracker.changed(seen):
            prepared.tmp_path.unlink(missing_ok=True)
            self.tracker.release(seen)
            return
        assert cand.channel is not None
        self._oldest.setdefault(cand.channel, time.monotonic())
        self.prepared[cand.channel].append((seen, prepared))

    def _still_settling(self, seen: Seen) -> bool:
        """Changed since judged complete, or changed less than the quiet time ago (a file
        moved into place): look again later rather than refuse a file still being written."""
        if self.tracker.changed(seen):
            return True
        age = time.time() - seen.ident[2] / 1e9
        return 0 <= age < self.config.quiet_seconds  # (a ctime in the future: clock skew)

    def _unexpected(self, seen: Seen, error: BaseException) -> None:
        log.error("reading %s failed: %r", seen.cand.rel, error)
        self.delta.error(seen.cand.rel, f"{type(error).__name__}: {error}")
        if seen.attempts + 1 >= self.config.max_attempts:
            self.reject(seen, f"reading the file failed {seen.attempts + 1} times: "
                              f"{type(error).__name__}: {error}", code="error")
        else:
            self.tracker.release(seen, failed=True)

    # --- batches ------------------------------------------------------------------------------
    def due(self, idle: bool) -> list[str]:
        """Channels whose batch should be committed now."""
        now = time.monotonic()
        return [name for name, items in self.prepared.items()
                if items and (idle or len(items) >= self.config.batch_size
                              or now - self._oldest[name] >= self.config.batch_wait)]

    def next_due_in(self) -> float | None:
        oldest = [*self._oldest.values(), *(since for _, _, since in self.unpublished.values())]
        if not oldest:
            return None
        return max(0.0, min(oldest) + self.config.batch_wait - time.monotonic())

    def flush(self, name: str) -> None:
        """Plugin checks and one commit transaction; published with the burst (publish_due)."""
        items = self.prepared.pop(name, [])
        self._oldest.pop(name, None)
        try:
            channel = self._channel(name)
            if channel is None:
                for seen, _ in items:
                    self.reject(seen, f"channel {name!r} does not exist", code="no-channel")
                return
            records = self._commit(channel, items)
            if records:
                # published with the burst's other batches (publish_due): one index build
                # for a burst, as an import makes, not one per batch
                self.unpublished.setdefault(name, (channel, [], time.monotonic()))[1].extend(
                    records)
            self.delta.counts["batches"] += 1
            self.delta.batch = True
            log.info("watch: %d of %d files entered channel %s", len(records), len(items), name)
        except Exception as e:
            # the catalog is busy, the disk is full...: the files stay, to be tried again
            log.exception("watch: a batch of %d files for %s failed", len(items), name)
            self.delta.error(name, f"{type(e).__name__}: {e}")
            for seen, _ in items:
                if seen.busy:
                    self.tracker.release(seen, failed=True)
        finally:
            for _, prepared in items:
                prepared.tmp_path.unlink(missing_ok=True)

    def publish_due(self, idle: bool) -> None:
        """Publish what was committed (indexes, events) once the burst is over (``idle``:
        nothing read or waiting), or when the first commit not yet published has waited
        ``batch_wait``: a steady stream of files still becomes visible that often. A
        committed file is durable and its source is gone: a crash before its publish leaves
        its subdir's generation unbuilt, which start-up recovery builds."""
        now = time.monotonic()
        for name, (channel, records, since) in list(self.unpublished.items()):
            if not (idle or now - since >= self.config.batch_wait):
                continue
            del self.unpublished[name]
            try:
                builds = self.services.indexer.builds
                self.services.ingestor.publish(channel, records)
                self.delta.counts["rebuilds"] += self.services.indexer.builds - builds
            except Exception as e:
                # the files are in the catalog: the next build of the subdir serves them
                log.exception("watch: publishing %d files of %s failed", len(records), name)
                self.delta.error(name, f"{type(e).__name__}: {e}")

    def _channel(self, name: str) -> Channel | None:
        channel: Channel | None = self.services.catalog().get_channel(name)
        if channel is None and self.config.create_channels:
            from repoproxy.domain.channels import create_channel

            try:
                # a subchannel takes its parent's privacy
                privacy = None if "/" in name else self.config.create_privacy
                channel = create_channel(self.services, name, privacy=privacy, actor="watch")
            except NotFound:  # a subchannel of a channel that does not exist
                return None
            log.info("watch: created channel %s (%s)", name, self.config.create_privacy)
        return channel

    def _commit(self, channel: Channel, items: list[tuple[Seen, Prepared]]
                ) -> list[PackageRecord]:
        catalog = self.services.catalog()
        ingestor = self.services.ingestor
        todo: list[tuple[Seen, Prepared]] = []
        stored: dict[tuple[str, str], str] = {}  # what the channel has, one query per subdir
        for subdir in {prepared.subdir for _, prepared in items}:
            stored.update(((subdir, fn), sha) for fn, (_, sha) in catalog.stored_files(
                channel.name, subdir, [p.filename for _, p in items if p.subdir == subdir]
            ).items())
        for seen, prepared in items:
            if stored.get((prepared.subdir, prepared.filename)) == prepared.sha256:
                self._done(seen, channel.name, prepared.subdir, "already_present")
                continue
            try:
                ingestor.check(channel, prepared)
            except RepoproxyError as e:
                self.reject(seen, e.message, code=e.code, reasons=e.reasons or None)
                continue
            todo.append((seen, prepared))
        if not todo:
            return []
        fsync_files(p.tmp_path for _, p in todo)  # the workers wrote without fsync
        records, errors = ingestor.commit_many(
            channel, [p for _, p in todo], force=self.config.duplicates == "replace",
            uploader="watch", audit=upload_audit("watch"))
        refused = {id(p): e for p, e in errors}
        committed = iter(records)
        for seen, prepared in todo:
            if id(prepared) in refused:
                where = f"{channel.name}/{prepared.subdir}/{prepared.filename}"
                self.reject(seen, f"{where} already exists in the channel with other content "
                                  f"(sha256 {prepared.sha256}); set {PREFIX}duplicates = "
                                  "replace to replace it", code="exists")
            else:
                next(committed)
                self._done(seen, channel.name, prepared.subdir, "processed")
        return records

    # --- outcomes -------------------------------------------------------------------------
    def _done(self, seen: Seen, channel: str, subdir: str, counter: str) -> None:
        if self.tracker.changed(seen):
            # written again after we read it: keep the new bytes, they are judged on their own
            self.tracker.release(seen)
            return
        self.delta.counts[counter] += 1
        try:
            folder.finish(self.config, seen.cand, channel, subdir)
        except OSError as e:
            log.error("watch: %s is in %s but could not be removed: %s", seen.cand.rel,
                      channel, e)
            self.delta.error(seen.cand.rel, f"could not remove after ingest: {e}")
            self.tracker.release(seen, failed=True)  # found again later: already present
            return
        self.tracker.forget(seen)

    def reject(self, seen: Seen, reason: str, *, code: str = "rejected",
               reasons: list[str] | None = None) -> None:
        cand = seen.cand
        try:
            dest = folder.reject(self.config, cand, reason, code=code, reasons=reasons)
        except FileNotFoundError:
            self.tracker.forget(seen)
            return
        except OSError as e:
            log.error("watch: could not move %s to %s: %s", cand.rel, self.config.rejected_dir, e)
            self.delta.error(cand.rel, f"could not move to .rejected: {e}")
            self.tracker.release(seen, failed=True)
            return
        log.warning("watch: refused %s (moved to %s): %s", cand.rel, dest, reason)
        self.tracker.forget(seen)
        self.delta.counts["rejected"] += 1
        self.delta.error(cand.rel, reason)

    def save(self) -> None:
        if self.delta:
            state.save(self.services.db(), self.delta)
            self.delta = state.Delta()

    def close(self) -> None:
        """Publish what was committed, stop the processes (after the files they are reading)
        and drop unfinished work."""
        self.publish_due(idle=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for future, seen in list(self.in_flight.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().tmp_path.unlink(missing_ok=True)
            self.tracker.release(seen)
        self.in_flight.clear()
        for items in self.prepared.values():
            for seen, prepared in items:
                prepared.tmp_path.unlink(missing_ok=True)
                self.tracker.release(seen)
        self.prepared.clear()
        self._oldest.clear()

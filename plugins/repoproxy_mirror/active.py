"""An active mirror's run: copy the (filtered) upstream into the channel through the one
ingest pipeline.

Per subdir: fetch the upstream's ``repodata.json`` (the patched index, never
``repodata_from_packages.json``), select the files the mirror wants, download each one
verified against the upstream's sha256 and size, then receive, check (plugins: the channel's
policy), commit and publish it through :class:`repoproxy.pipeline.ingest.Ingestor`. The
served record is the upstream's (patched dependencies and unknown keys kept), with the hashes
of the bytes we verified. Only after that are files the upstream dropped removed, and only
those this mirror placed, once they have been gone for the retention period.

A run holds a per-mirror lock file: a second runner (another process) returns at once, and a
``running`` state whose lock is free is a crashed run, which the worker resumes: files already
committed are skipped, so a resumed run continues where the crash left it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repoproxy.domain.audit import audit
from repoproxy.errors import PackageRejected, RepoproxyError
from repoproxy.pipeline.ingest import prepare_file
from repoproxy.plugins import notify
from repoproxy.storage.catalog import Catalog, utcnow
from repoproxy.storage.db import write_transaction
from repoproxy.storage.store import atomic_write, fsync_files

from . import own_policy
from .closure import closure
from .filters import MirrorFilter
from .locks import file_lock
from .model import InvalidMirror, Mirror
from .removed import removed_path
from .service import mirror_dir, mirror_store
from .upstream import Pools, Upstream, UpstreamError, UpstreamNotFound, expected

if TYPE_CHECKING:
    from sqlite_utils import Database

    from repoproxy.domain.core import Core
    from repoproxy.models import PackageRecord
    from repoproxy.pipeline.ingest import Prepared

log = logging.getLogger(__name__)
CHUNK = 32  # downloads checked and committed together (one transaction)
#: seconds between two publishes (index rebuilds) of a run: clients see a long run progress,
#: and a big run does not rebuild its indexes every few files
PUBLISH_INTERVAL = 10.0
MAX_INDEX = 1024**3

@contextmanager
def run_lock(core: Core, mirror: Mirror) -> Iterator[bool]:
    """The mirror's run lock, across processes; yields False if someone else holds it."""
    with file_lock(mirror_dir(core) / "locks" / f"{mirror.id}.lock", blocking=False) as mine:
        yield mine

def is_running_elsewhere(core: Core, mirror: Mirror) -> bool:
    with run_lock(core, mirror) as mine:
        return not mine


def merge_record(ours: dict[str, Any], upstream: dict[str, Any]) -> dict[str, Any]:
    """The upstream's record (patches, unknown keys) with the hashes of the verified bytes."""
    out = dict(upstream)
    for key in ("md5", "sha256", "size", "name", "version", "build"):
        if key in ours:
            out[key] = ours[key]
    out.pop("indexed_timestamp", None)  # ours, set by ingest when the file first arrives
    return out

#: what a download thread hands the run: the downloaded temporary file (None: the download
#: failed, it left nothing) and the file prepared from it, or why it was refused
Fetched = tuple["Path | None", "Prepared | RepoproxyError | None"]


def _discard(futures: Iterable[Future[Fetched]]) -> None:
    """Remove the temporary files of finished downloads (a committed file was moved away)."""
    for future in futures:
        try:
            tmp, got = future.result()
        except Exception:  # noqa: S112 - it failed: it left nothing (Upstream.download)
            continue
        for path in (tmp, getattr(got, "tmp_path", None)):
            if path is not None:
                with suppress(OSError):
                    path.unlink()


def run(core: Core, name: str, *, shutdown: threading.Event | None = None) -> dict[str, Any]:
    """Run an active mirror now, in this thread; returns its definition after the run."""
    store = mirror_store(core)
    mirror = store.get(name)
    if mirror.mode != "active":
        raise InvalidMirror(f"mirror {name!r} is passive: it has no runs")
    with run_lock(core, mirror) as mine:
        if not mine:
            return store.get(name).as_json()
        # "running" here means a crashed run (its lock is free): resume it
        if not store.set_state_if(mirror.id, "running",
                                  ("created", "pending", "completed", "failed", "running")):
            return store.get(name).as_json()
        Run(core, mirror, shutdown).execute()
    return store.get(name).as_json()

class Run:
    def __init__(self, core: Core, mirror: Mirror, shutdown: threading.Event | None) -> None:
        self.core, self.mirror, self.shutdown = core, mirror, shutdown
        self.store = mirror_store(core)
        self.counts = {"upstream": 0, "selected": 0, "added": 0, "present": 0, "errors": 0,
                       "rejected": 0, "conflicts": 0, "pending_removal": 0, "removed": 0}
        self.errors: list[str] = []
        self.actor = f"mirror:{mirror.name}"
        self._lock = threading.Lock()
        # the run's one client, shared by its download threads (its pools are thread-safe)
        self._up: Upstream | None = None

    def stop_requested(self) -> bool:
        if self.shutdown is not None and self.shutdown.is_set():
            return True
        return self.store.state_of(self.mirror.id) in (None, "stopping", "stopped")

    def execute(self) -> None:
        final, error = "completed", None
        try:
            up = self._up = Upstream(self.mirror.source, self.core.settings, Pools(
                int(self.core.settings["repoproxy_mirror.download_workers"])))
            filt = MirrorFilter(self.mirror)
            subdirs = self._subdirs(up, filt)
            indexes: dict[str, dict[str, Any] | None] = {}
            if self.mirror.only_spec_dependencies and self.mirror.only_specs:
                # every subdir's index first: a platform's solve needs noarch and fills it
                indexes = {sd: self._index(up, sd) for sd in subdirs}
                found, failures = closure(self.mirror.source, {
                    sd: data for sd, data in indexes.items() if data is not None},
                    self.mirror.only_specs,
                    float(self.core.settings["repoproxy_mirror.solve_timeout"]))
                filt.also = found
                self.counts["closure_errors"] = failures
            for subdir in subdirs:
                if self.stop_requested():
                    break
                self._subdir(up, filt, subdir, indexes.pop(subdir, None))
        except RepoproxyError as e:
            final, error = "failed", e.message
        except Exception as e:  # a bug must not leave the mirror "running" forever
            log.exception("mirror %s: run failed", self.mirror.name)
            final, error = "failed", f"internal error: {type(e).__name__}"
        finally:
            if self._up is not None:
                self._up.close()
        if self.shutdown is not None and self.shutdown.is_set():
            final = "pending"  # the server stops: the next one resumes the run
        elif self.stop_requested():
            final = "stopped"
        if error is None and self.errors:
            error = f"{len(self.errors)} file(s) failed; first: {self.errors[0]}"
        self.store.set_fields(self.mirror.id, state=final, last_run_at=utcnow(),
                              updated=utcnow(), counts=self.counts, last_error=error)

    def _subdirs(self, up: Upstream, filt: MirrorFilter) -> list[str]:
        if self.mirror.subdirs:
            return list(self.mirror.subdirs)
        try:
            _, body = up.fetch_bytes("channeldata.json", MAX_INDEX)
            subdirs = json.loads(body).get("subdirs") or []
        except (UpstreamNotFound, ValueError, AttributeError):
            subdirs = []
        return sorted({"noarch", *(s for s in subdirs if isinstance(s, str))})

    def _fetched(self, path: str, status: str) -> None:
        notify(self.core.pm, "repoproxy_mirror_upstream", services=self.core,
               mirror=self.mirror.name, channel=self.mirror.channel, path=path, status=status)

    def _index(self, up: Upstream, subdir: str) -> dict[str, Any] | None:
        path = f"{subdir}/repodata.json"
        try:
            got = up.index(subdir, MAX_INDEX)
        except UpstreamNotFound:
            self._fetched(path, "miss")
            return None  # an absent subdir is an empty one
        except UpstreamError:
            self._fetched(path, "error")
            raise
        self._fetched(path, "miss")
        return got.data

    def _subdir(self, up: Upstream, filt: MirrorFilter, subdir: str,
                repodata: dict[str, Any] | None = None) -> None:
        if repodata is None:
            repodata = self._index(up, subdir)
        if repodata is None:
            return
        self.counts["upstream"] += sum(len(repodata.get(k) or {})
                                       for k in ("packages", "packages.conda"))
        wanted = filt.select(repodata, subdir)
        core = self.core
        channel = core.catalog().require_channel(self.mirror.channel)
        refused = own_policy.hidden(core, self.mirror, channel, subdir, wanted)
        wanted = {fn: rec for fn, rec in wanted.items() if fn not in refused}
        self.counts["selected"] += len(wanted)
        removed_changed = self._carry_removed(subdir, repodata.get("removed"))
        present = {r.filename: r for r in core.catalog().packages(channel.name, subdir)}
        mine = self.store.files(self.mirror.id, subdir)
        todo: list[tuple[str, dict[str, Any], bool]] = []
        for fn, rec in sorted(wanted.items()):
            have = present.get(fn)
            if have is not None and have.sha256 == rec.get("sha256"):
                self.counts["present"] += 1
                if fn not in mine and have.uploader == self.actor:
                    self.store.add_files(self.mirror.id, subdir, [(fn, have.sha256)])
                continue
            if have is not None and fn not in mine:
                # someone uploaded other bytes under this name: a mirror never replaces them
                self.counts["conflicts"] += 1
                continue
            todo.append((fn, rec, have is not None))
        stopped = self._copy(channel, subdir, todo)
        if not stopped and removed_changed and not todo:
            core.indexer.build(channel.name, subdir)
        if not stopped:
            self._drop(channel.name, subdir, wanted, mine)

    def _copy(self, channel: Any, subdir: str,
              todo: list[tuple[str, dict[str, Any], bool]]) -> bool:
        """Download (a few at a time, ahead of the ingest), verify, ingest in chunks, publish
        now and then; True if stopped."""
        workers = max(1, int(self.core.settings["repoproxy_mirror.download_workers"]))
        published: list[PackageRecord] = []
        stopped = False
        last_publish = time.monotonic()
        items = iter(todo)
        pending: deque[tuple[tuple[str, dict[str, Any], bool], Future[Fetched]]] = deque()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            def fill() -> None:
                # downloads run ahead of the ingest (bounded), so neither waits for the other
                while len(pending) < CHUNK + workers * 2:
                    item = next(items, None)
                    if item is None:
                        return
                    pending.append((item, pool.submit(self._download, subdir, item[0],
                                                      item[1])))

            fill()
            while pending:
                if self.stop_requested():
                    stopped = True
                    break
                chunk = [pending.popleft() for _ in range(min(CHUNK, len(pending)))]
                fill()
                try:
                    stopped = self._ingest(channel, subdir, [c for c, _ in chunk],
                                           [f for _, f in chunk], published)
                finally:
                    _discard(f for _, f in chunk)
                if published and time.monotonic() - last_publish >= PUBLISH_INTERVAL:
                    self.core.ingestor.publish(channel, published)
                    published, last_publish = [], time.monotonic()
                if stopped:
                    break
            for _, future in pending:  # a stop leaves downloads nobody ingests
                future.cancel()
        _discard(f for _, f in pending if not f.cancelled())
        if published:
            self.core.ingestor.publish(channel, published)
        return stopped

    def _download(self, subdir: str, fn: str, rec: dict[str, Any]) -> Fetched:
        """Download a file (verified against the upstream's sha256 and size) and prepare it,
        in a download thread: the file is read once more from the page cache and its info
        part parsed here (libarchive and hashlib release the GIL), so that the run's thread
        only checks policies and commits (receiving each file there, a second copy, was
        three fifths of its time)."""
        path = f"{subdir}/{fn}"
        sha, size = expected(rec)
        assert self._up is not None  # made by execute()
        rules = self.core.ingestor.rules
        tmp_dir = self.core.store.tmp_dir
        try:
            # not synced: the chunk's files are synced together before their commit
            tmp = self._up.download(path, tmp_dir, sha, size, rules.max_size, sync=False)
        except RepoproxyError as e:
            self._fetched(path, "error")
            with self._lock:
                self.counts["errors"] += 1
                self.errors.append(e.message)
            return None, None
        self._fetched(path, "miss")
        try:
            # linked, not copied: the download is this run's own file
            return tmp, prepare_file(tmp, tmp_dir, rules, subdir, expected_sha256=sha,
                                     filename=fn, sync=False, link=True)
        except RepoproxyError as e:
            return tmp, e

    def _ingest(self, channel: Any, subdir: str, chunk: list[tuple[str, dict[str, Any], bool]],
                futures: list[Future[Fetched]], published: list[PackageRecord]) -> bool:
        """Check a chunk of prepared downloads, then commit them in one transaction per force
        flag (the pipeline's batch commit); True if a stop was seen."""
        core = self.core
        actor = self.actor

        def record(db: Database, r: PackageRecord) -> None:
            audit(db, actor, "package.mirror", r.channel, r.path, sha256=r.sha256, size=r.size)

        ready: list[tuple[Prepared, bool]] = []
        stopped = False
        for (fn, rec, force), future in zip(chunk, futures, strict=True):
            _, got = future.result()
            if self.stop_requested():
                stopped = True
                break
            try:
                if got is None:
                    continue
                if isinstance(got, RepoproxyError):
                    raise got
                got.record = merge_record(got.record, rec)
                core.ingestor.check(channel, got)
                ready.append((got, force))
            except PackageRejected:
                self.counts["rejected"] += 1  # the channel's policy refuses it
            except RepoproxyError as e:
                self.counts["errors"] += 1
                self.errors.append(f"{subdir}/{fn}: {e.message}")
        # downloaded without fsync: the chunk is synced here at once, before any of it is
        # moved into the channel and committed
        fsync_files(p.tmp_path for p, _ in ready)
        for force in (False, True):
            items = [p for p, f in ready if f is force]
            if not items:
                continue
            records, errors = core.ingestor.commit_many(channel, items, force=force,
                                                        uploader=actor, audit=record)
            for prepared, error in errors:
                self.counts["errors"] += 1
                self.errors.append(f"{subdir}/{prepared.filename}: {error.message}")
            self.store.add_files(self.mirror.id, subdir,
                                 [(r.filename, r.sha256) for r in records])
            self.counts["added"] += len(records)
            published.extend(records)
        return stopped

    def _carry_removed(self, subdir: str, removed: Any) -> bool:
        """Keep the upstream's ``removed`` list for the indexer; True if it changed."""
        names = sorted({fn for fn in removed or () if isinstance(fn, str)})
        path = removed_path(self.core, self.mirror, subdir)
        try:
            old = json.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            old = []
        if old == names:
            return False
        atomic_write(path, json.dumps(names).encode())
        db = self.core.db()
        with write_transaction(db):
            Catalog(db).touch_subdir(self.mirror.channel, subdir)  # the index must be rebuilt
        return True

    def _drop(self, channel: str, subdir: str, wanted: dict[str, Any],
              mine: dict[str, tuple[str, float | None]]) -> None:
        now = time.time()
        retention = float(self.core.settings["repoproxy_mirror.retention_days"]) * 86400
        back = [fn for fn, (_, since) in mine.items() if fn in wanted and since is not None]
        if back:
            self.store.set_missing(self.mirror.id, subdir, back, None)
        gone = {fn: since for fn, (_, since) in mine.items() if fn not in wanted}
        new = [fn for fn, since in gone.items() if since is None]
        if new:
            self.store.set_missing(self.mirror.id, subdir, new, now)
        expired = [fn for fn, since in gone.items() if now - (since or now) >= retention]
        self.counts["pending_removal"] += len(gone) - len(expired)
        if not expired:
            return
        existing = {r.filename for r in self.core.catalog().packages(channel, subdir)}
        files = [(subdir, fn) for fn in sorted(expired) if fn in existing]
        actor = self.actor

        def record(db: Database, r: PackageRecord) -> None:
            audit(db, actor, "package.delete", r.channel, r.path, reason="dropped upstream")

        if files:
            self.core.ingestor.remove_many(channel, files, audit=record)
        self.store.forget_files(self.mirror.id, subdir, expired)
        self.counts["removed"] += len(files)

"""Materialise a subdir's indexes from the catalog: repodata.json (+ .zst, .gz), CEP-16 shards,
run_exports.json (CEP-12), and channeldata.json (CEP-38) at the channel root.

Incremental: the catalog keeps each record's JSON text, so repodata.json is assembled from
strings without reading any package file; only the shards of package names touched since the
last build are rewritten. Builds of one subdir are serialised by a file lock (the server and a
CLI import may run at once) and coalesced: a builder that finds the subdir already built at
the current generation returns at once, so a burst of uploads causes far fewer builds.
"""

from __future__ import annotations

import bisect
import fcntl
import gzip
import hashlib
import json
import logging
import os
import threading
import time
from collections import UserList, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import zstandard

from repoproxy.models import Channel, PackageRecord
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.plugins import collect, notify
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import read_snapshot, write_transaction
from repoproxy.storage.store import (
    free_later,
    replace_many,
    set_aside,
    sync_written,
    wait_freed,
)

if TYPE_CHECKING:
    from repoproxy.storage.runtime import Runtime

log = logging.getLogger(__name__)

SHARD_INDEX = "repodata_shards.msgpack.zst"
HIDDEN = ".hidden.json"
#: zstd level of repodata.json.zst, run_exports.json.zst and the shard index. Measured on a
#: 5,000-file repodata.json (1.8 MB) on two busy cores: level 16 (conda-index's) 72 kB in
#: 0.4-1.9 s, level 3 85 kB in 5-17 ms, level 1 96 kB in 2 ms; at 50,000 files (18 MB) level 3
#: takes ~60 ms, level 1 ~16 ms. zstd's multithreaded mode was slower at every size here. A
#: publish must be fast: level 1 (a hash-heavy shard index hardly compresses at any level).
ZST_LEVEL = 1
SHARD_ZST_LEVEL = 12  # a shard is small: the level costs nothing here
#: gzip twins are written after the files they compress (off the visible path); level 1 is
#: about twice as fast as 6 for ~12% more bytes
GZIP_LEVEL = 1

_COMPRESSOR: ThreadPoolExecutor | None = None
_COMPRESSOR_LOCK = threading.Lock()


def _compressor() -> ThreadPoolExecutor:
    """One thread for gzip twins, which compress while the main thread writes the rest."""
    global _COMPRESSOR
    with _COMPRESSOR_LOCK:
        if _COMPRESSOR is None:
            _COMPRESSOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gzip-twins")
        return _COMPRESSOR


def pack_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record as CEP-16 shards carry it: md5 and sha256 as raw bytes."""
    out = dict(record)
    for key in ("md5", "sha256"):
        if isinstance(out.get(key), str):
            out[key] = bytes.fromhex(out[key])
    return out


def encode_shard(records: dict[str, dict[str, Any]]) -> bytes:
    shard: dict[str, Any] = {"packages": {}, "packages.conda": {}, "removed": []}
    for fn in sorted(records):
        key = "packages.conda" if fn.endswith(".conda") else "packages"
        shard[key][fn] = pack_record(records[fn])
    return zstandard.ZstdCompressor(level=SHARD_ZST_LEVEL).compress(
        msgpack.packb(shard, use_bin_type=True)
    )


class HiddenCache:
    """Subdirs' hidden files (policy), each re-read only when its file changes.

    The indexer replaces the file by rename, so inode + mtime change with its content.
    """

    def __init__(self) -> None:
        self._cache: dict[Path | str, tuple[tuple[int, int], frozenset[str]]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path | str) -> frozenset[str]:
        try:
            st = os.stat(path)  # noqa: PTH116 (hot path: str paths)
        except FileNotFoundError:
            return frozenset()
        key = (st.st_mtime_ns, st.st_ino)
        cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        try:
            with open(path, "rb") as f:
                value = frozenset(json.loads(f.read()))
        except FileNotFoundError:  # the channel was removed between stat and read
            return frozenset()
        with self._lock:
            self._cache[path] = (key, value)
        return value


@lru_cache(maxsize=1 << 16)
def readable(filename: str) -> bool:
    """Whether clients can parse the name, version and build of a stored file name.

    Ingest refuses anything else; a row from an older, looser rule (or a hand edit) is kept
    out of the indexes, since one unparsable record makes rattler refuse the whole subdir.
    Cached: a build of an unchanged subdir parses nothing again.
    """
    return is_package_filename(filename)


class _LazyRecords(UserList[PackageRecord]):
    """The subdir's full records for ``repoproxy_excluded_files``, read on first use.

    Decoding every record of a big subdir costs more than the rest of a publish; the policy
    plugin, when its channel has no policy, never looks at them.
    """

    def __init__(self, load: Callable[[], Iterable[PackageRecord]]) -> None:
        self._load: Callable[[], Iterable[PackageRecord]] | None = load
        self._data: list[PackageRecord] = []

    @property
    def data(self) -> list[PackageRecord]:
        if self._load is not None:
            self._data, self._load = list(self._load()), None
        return self._data

    @data.setter
    def data(self, value: list[PackageRecord]) -> None:
        self._data, self._load = value, None


@dataclass
class _File:
    name: str
    #: ``"<filename>":{record}``: the repodata.json member, serialized once
    member: str
    #: ``"<filename>":{"run_exports":{...}}``: the run_exports.json member
    run_exports: str
    conda: bool  # a .conda file (else .tar.bz2)

    def record(self) -> dict[str, Any]:
        return dict(json.loads(self.member[self.member.index(":") + 1:]))


@dataclass
class _Parts:
    """A subdir's serialized index members, kept between builds so that a publish serializes
    only the files of the names that changed and concatenates the rest."""

    key: tuple[str, str, str]  # channel, subdir, the channel's creation time
    built: int  # the catalog generation these parts are the image of
    files: dict[str, _File] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # file names, sorted as SQLite sorts them
    by_name: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    unreadable: set[str] = field(default_factory=set)
    #: name -> shard digest as the last build left them (None: read from the catalog)
    shards: dict[str, str] | None = None

    def drop(self, filename: str) -> None:
        f = self.files.pop(filename)
        self.by_name[f.name].discard(filename)
        if not self.by_name[f.name]:
            del self.by_name[f.name]
        self.unreadable.discard(filename)

    def add(self, filename: str, name: str, record: str, run_exports: str | None) -> None:
        key = json.dumps(filename)
        rx = (json.dumps(json.loads(run_exports), sort_keys=True, separators=(",", ":"))
              if run_exports else "{}")
        self.files[filename] = _File(name, f"{key}:{record}", f'{key}:{{"run_exports":{rx}}}',
                                     filename.endswith(".conda"))
        self.by_name[name].add(filename)
        if not readable(filename):
            self.unreadable.add(filename)

    def apply(self, rows: Iterable[tuple[str, str, str, str | None]],
              names: set[str]) -> None:
        """Replace the files of ``names`` by ``rows`` (the catalog's current files of them)."""
        before = {fn for name in names for fn in self.by_name.get(name, ())}
        for fn in before:
            self.drop(fn)
        added = []
        for fn, name, record, run_exports in rows:
            if fn in self.files:  # its name changed (a forced replacement): drop the old one
                self.drop(fn)
            self.add(fn, name, record, run_exports)
            added.append(fn)
        if len(before) + len(added) > len(self.order) // 8:
            self.order = sorted(self.files)  # many changes: one sort beats many insertions
            return
        for fn in before - set(added):
            i = bisect.bisect_left(self.order, fn)
            if i < len(self.order) and self.order[i] == fn:
                del self.order[i]
        for fn in added:
            i = bisect.bisect_left(self.order, fn)
            if i == len(self.order) or self.order[i] != fn:
                self.order.insert(i, fn)


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` holds ``data``. A shard file of a build a machine crash cut short
    (renamed, not yet synced) may exist short or empty: the rebuild must rewrite it. A shard
    is a few kB and a publish rewrites few: reading it back costs next to nothing."""
    try:
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def _split(parts: _Parts, left_out: set[str]) -> tuple[list[_File], list[_File]]:
    """The served files of a subdir, .tar.bz2 and .conda apart, each sorted by file name."""
    files = parts.files
    # comprehensions, not a loop of appends: this runs over the whole subdir at every publish
    served = ([files[fn] for fn in parts.order if fn not in left_out] if left_out
              else [files[fn] for fn in parts.order])
    return [f for f in served if not f.conda], [f for f in served if f.conda]


def _run_exports_json(subdir: str, tar: list[_File], conda: list[_File]) -> bytes:
    """run_exports.json (CEP-12): the same bytes as json.dumps(..., sort_keys=True,
    separators=(",", ":"))."""
    tar_rx = ",".join([f.run_exports for f in tar])
    conda_rx = ",".join([f.run_exports for f in conda])
    return (f'{{"info":{{"subdir":{json.dumps(subdir)}}},"packages":{{{tar_rx}}},'
            f'"packages.conda":{{{conda_rx}}}}}').encode()


class Indexer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        #: the served hidden sets, shared by the conda file views and the read model
        self.hidden_cache = HiddenCache()
        self.builds = 0  # how many builds really ran (tests and the watch plugin read it)
        self._count_lock = threading.Lock()
        self._parts: dict[tuple[str, str], _Parts] = {}
        self._channeldata: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}

    @property
    def _zst(self) -> zstandard.ZstdCompressor:
        return zstandard.ZstdCompressor(level=ZST_LEVEL)

    @contextmanager
    def _lock(self, channel: str, subdir: str) -> Iterator[None]:
        locks = self.runtime.store.root / "locks"
        locks.mkdir(exist_ok=True)
        with open(locks / f"{channel.replace('/', '+')}.{subdir}.lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def build(self, channel: str, subdir: str, *, force: bool = False) -> bool:
        """Bring the subdir's files up to the catalog's generation; True if anything was built.

        Order of the renames: the changed shards, the shard index, repodata.json.zst,
        repodata.json, the hidden list, run_exports.json (+ .zst); gzip twins last. All are
        fsynced together after the renames and before the generation is marked built (see
        :func:`~repoproxy.storage.store.replace_many`). A stale gzip twin is removed before
        its file is replaced (the file is then served plain until the new twin lands), so no
        encoding of a file ever answers older contents.
        """
        store = self.runtime.store
        directory = store.subdir_dir(channel, subdir)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock(channel, subdir):
            started = time.perf_counter()
            db = self.runtime.db()
            catalog = Catalog(db)
            ch = catalog.get_channel(channel)
            if ch is None:
                return False
            if force:
                with write_transaction(db):
                    catalog.mark_all_dirty(channel, subdir)
            # one snapshot for the state, the dirty names, the records and the shard hashes: a
            # file committed meanwhile must be in all of them or in none (else repodata.json
            # could name a file whose shard this build does not write); it is then the next
            # build's, since its commit moved the generation on
            with read_snapshot(db):
                generation, built = catalog.subdir_state(channel, subdir)
                if built >= generation and (directory / "repodata.json").exists():
                    return False
                last_dirty, dirty = catalog.dirty_names(channel, subdir)
                parts = self._current_parts(catalog, ch, subdir, built, dirty, force)
                # name -> shard digest: kept with the parts (this process's builds are the
                # only writers of the catalog's shard rows while the parts are current)
                current = (parts.shards if parts.shards is not None
                           else catalog.shard_hashes(channel, subdir))

            hidden = self._excluded(ch, subdir, catalog)
            previous_hidden = self.hidden_files(channel, subdir)
            if hidden != previous_hidden:
                dirty |= {parts.files[fn].name for fn in hidden ^ previous_hidden
                          if fn in parts.files}
            if parts.unreadable:
                log.warning("%s/%s: left out of the indexes, clients cannot parse their names "
                            "(remove them): %s", channel, subdir,
                            ", ".join(sorted(parts.unreadable)))
            left_out = hidden | parts.unreadable

            # what clients read first comes first: the changed shards, then the index naming
            # them (a reader never sees an index naming a shard that is not there yet), then
            # repodata.json.zst, repodata.json and the hidden list: the new file is visible.
            # run_exports.json and the gzip twins follow. Nothing waits on the disk before
            # the renames: everything is fsynced at once afterwards, and only then is the
            # generation marked built (a machine crash before that leaves it unbuilt, and
            # start-up recovery rebuilds it, rewriting every file of this build).
            writes, shards = self._shard_writes(channel, subdir, parts, dirty, left_out)
            current.update({k: v for k, v in shards.items() if v is not None})
            for name, digest in shards.items():
                if digest is None:
                    current.pop(name, None)
            files = [(path, data, False) for path, data in writes]
            files.append((directory / SHARD_INDEX, self._shard_index(channel, subdir, current),
                          False))
            removed = sorted({str(fn) for fn in collect(
                self.runtime.pm.hook.repoproxy_removed_files(
                    services=self.runtime, channel=ch, subdir=subdir))})
            tar, conda = _split(parts, left_out)
            files.append((directory / "repodata.json",
                          self._repodata_json(channel, subdir, tar, conda, removed), True))
            if hidden != previous_hidden or not (directory / HIDDEN).exists():
                files.append((directory / HIDDEN, json.dumps(sorted(hidden)).encode(), False))
            written, twins = self._write_indexes(files)
            more, more_twins = self._write_indexes(
                [(directory / "run_exports.json", _run_exports_json(subdir, tar, conda), True)])
            sync_written([*written, *more, *twins(), *more_twins()])
            with write_transaction(db):
                catalog.mark_built(channel, subdir, generation, last_dirty, shards)
            parts.built = generation  # only now: a failed build leaves parts a reload
            parts.shards = current
            self._parts[(channel, subdir)] = parts
            self._collect_garbage(channel, subdir, catalog)
            wait_freed()  # the replaced files, freed meanwhile
            with self._count_lock:
                self.builds += 1
            seconds = time.perf_counter() - started
        notify(self.runtime.pm, "repoproxy_repodata_written",
               services=self.runtime, channel=ch, subdir=subdir, path=directory)
        notify(self.runtime.pm, "repoproxy_operation_timed", services=self.runtime,
               operation="index_build", channel=channel, seconds=seconds)
        return True

    def _current_parts(self, catalog: Catalog, channel: Channel, subdir: str, built: int,
                       dirty: set[str], force: bool) -> _Parts:
        """The subdir's parts at the catalog's state: the cached ones plus the dirty names if
        this process made the last build, else read whole (another process built since)."""
        key = (channel.name, subdir, channel.created)
        parts = self._parts.pop((channel.name, subdir), None)
        if parts is not None and parts.key == key and parts.built == built and not force:
            parts.apply(catalog.raw_parts(channel.name, subdir, dirty), dirty)
            if len(parts.files) == catalog.count_files(channel.name, subdir):
                return parts
            log.warning("%s/%s: cached index parts disagree with the catalog; reading it whole",
                        channel.name, subdir)
        parts = _Parts(key=key, built=-1)
        for fn, name, record, run_exports in catalog.raw_parts(channel.name, subdir):
            parts.add(fn, name, record, run_exports)
        parts.order = sorted(parts.files)
        return parts

    def _excluded(self, channel: Channel, subdir: str, catalog: Catalog) -> set[str]:
        hook = self.runtime.pm.hook.repoproxy_excluded_files
        if not hook.get_hookimpls():
            return set()  # no policy plugin: skip building full records
        records = _LazyRecords(lambda: catalog.packages(channel.name, subdir))
        return {str(fn) for fn in collect(hook(channel=channel, subdir=subdir, records=records,
                                                  services=self.runtime))}

    def _shard_writes(
        self, channel: str, subdir: str, parts: _Parts, dirty: set[str], left_out: set[str]
    ) -> tuple[list[tuple[Path, bytes]], dict[str, str | None]]:
        """The new shard files of the dirty names, and each dirty name's digest (or None)."""
        out: dict[str, str | None] = {}
        new: list[tuple[Path, bytes]] = []
        for name in dirty:
            files = {fn: parts.files[fn].record() for fn in parts.by_name.get(name, ())
                     if fn not in left_out}
            if not files:
                out[name] = None
                continue
            data = encode_shard(files)
            digest = hashlib.sha256(data).hexdigest()
            path = self.runtime.store.shard_path(channel, subdir, digest)
            if not _holds(path, data):  # content-addressed: an intact file is already right
                new.append((path, data))
            out[name] = digest
        return new, out

    def _shard_index(self, channel: str, subdir: str, shards: dict[str, str]) -> bytes:
        base_url = self.runtime.settings["repoproxy.base_url"]
        info: dict[str, Any] = {
            "subdir": subdir,
            "base_url": f"{base_url.rstrip('/')}/{channel}/{subdir}/" if base_url else "./",
            "shards_base_url": "./shards/",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        index = {
            "version": 1,
            "info": info,
            "shards": {name: bytes.fromhex(d) for name, d in sorted(shards.items())},
        }
        return bytes(self._zst.compress(msgpack.packb(index, use_bin_type=True)))

    def _repodata_json(self, channel: str, subdir: str, tar: list[_File],
                       conda: list[_File], removed: list[str]) -> bytes:
        """repodata.json, assembled from the serialized members: only changed files were
        encoded."""
        base_url = self.runtime.settings["repoproxy.base_url"]
        info: dict[str, Any] = {"subdir": subdir}
        if base_url:
            info["base_url"] = f"{base_url.rstrip('/')}/{channel}/{subdir}/"
        tar_members = ",".join([f.member for f in tar])
        conda_members = ",".join([f.member for f in conda])
        text = (
            f'{{"info":{json.dumps(info, sort_keys=True)},"packages":{{{tar_members}}},'
            f'"packages.conda":{{{conda_members}}},"removed":{json.dumps(removed)},'
            f'"repodata_version":{2 if base_url else 1}}}'
        )
        return text.encode()

    def _write_indexes(self, files: list[tuple[Path, bytes, bool]], *, zst: bool = True
                       ) -> tuple[list[Path], Callable[[], list[Path]]]:
        """Write ``(path, bytes, is_json_index)`` in the order given (:func:`replace_many`,
        unsynced); returns the paths written and the write of the JSON indexes' gzip twins
        (which returns theirs). The caller syncs all of them (:func:`sync_written`).

        A JSON index gets its .zst (if ``zst``, renamed just before it) and a gzip twin (what
        the server answers to Accept-Encoding: gzip without compressing per request). The
        twins compress in a thread once the files are in place (zlib releases the GIL); a
        stale twin is removed before its file is replaced, so until the returned callable runs
        the file is served plain, never older.
        """
        items: list[tuple[Path, bytes]] = []
        plain: list[tuple[Path, bytes]] = []
        for path, data, is_json in files:
            if is_json:
                gz = path.with_name(path.name + ".gz")
                plain.append((gz, data))
                if zst:
                    items.append((path.with_name(path.name + ".zst"), self._zst.compress(data)))
                # out of the way at once (a rename), freed later; made durable by the
                # directory fsync after the writes
                free_later([a for a in [set_aside(gz, move=True)] if a is not None])
            items.append((path, data))
        written = replace_many(items)
        # compressed only now: on a busy machine they would take the CPU from the files
        # that make a publish visible
        twins: list[tuple[Path, Future[bytes]]] = [
            (gz, _compressor().submit(gzip.compress, data, GZIP_LEVEL, mtime=0))
            for gz, data in plain]
        return written, lambda: replace_many([(gz, f.result()) for gz, f in twins])

    def _collect_garbage(self, channel: str, subdir: str, catalog: Catalog) -> None:
        days = self.runtime.settings["repoproxy.shard_retention_days"]
        expired = catalog.expired_shards(channel, subdir, time.time() - days * 86400)
        for digest in expired:
            with suppress(FileNotFoundError):
                self.runtime.store.shard_path(channel, subdir, digest).unlink()
        if expired:
            with write_transaction(catalog.db):
                catalog.forget_shards(channel, subdir, expired)

    def hidden(self, channel: str, subdir: str) -> frozenset[str]:
        """The files the subdir's served indexes leave out (cached until the set changes)."""
        return self.hidden_cache.get(self.runtime.store.subdir_dir(channel, subdir) / HIDDEN)

    def hidden_files(self, channel: str, subdir: str) -> set[str]:
        path = self.runtime.store.subdir_dir(channel, subdir) / HIDDEN
        try:
            return set(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return set()

    # --- channeldata.json (CEP-38) -----------------------------------------------------------
    def build_channeldata(self, channel: str, names: Iterable[str] | None = None) -> None:
        """Write channeldata.json; with ``names``, only those packages' entries are redone.

        A publish passes the names it touched, so its cost follows the change; without names
        (or without a readable previous file) every record of the channel is read.
        """
        with self._lock(channel, "channeldata"):  # read-modify-write: one writer at a time
            catalog = self.runtime.catalog()
            # a subdir row no current rule allows (see recovery) has no directory to read
            subdirs = [sd for sd in catalog.subdirs(channel) if is_subdir(sd)]
            hidden = {sd: self.hidden_files(channel, sd) for sd in subdirs}
            path = self.runtime.store.channel_dir(channel) / "channeldata.json"
            previous = self._read_channeldata(path) if names is not None else None
            if previous is None or names is None:
                packages = _channeldata_entries(channel, catalog.packages(channel), hidden)
            else:
                packages = dict(previous)
                wanted = set(names)
                for name in wanted:
                    packages.pop(name, None)
                packages.update(_channeldata_entries(
                    channel, catalog.packages_named(channel, wanted), hidden))
            data = {"channeldata_version": 1, "packages": packages, "subdirs": subdirs}
            # compact: json's indent switches to its pure-Python encoder (seconds at 50k files)
            encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
            written, twins = self._write_indexes([(path, encoded, True)], zst=False)
            # recovery rewrites channeldata.json whole at every start: nothing to mark
            sync_written([*written, *twins()])
            wait_freed()
            st = path.stat()
            self._channeldata[path] = ((st.st_ino, st.st_mtime_ns, st.st_size), packages)

    def _read_channeldata(self, path: Path) -> dict[str, Any] | None:
        """The packages of the current channeldata.json (parsed once per version of it)."""
        try:
            st = path.stat()
            ident = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._channeldata.get(path)
            if cached is not None and cached[0] == ident:
                return cached[1]
            packages = json.loads(path.read_bytes())["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return packages if isinstance(packages, dict) else None


def _channeldata_entries(channel: str, records: Iterable[PackageRecord],
                         hidden: dict[str, set[str]]) -> dict[str, Any]:
    """channeldata.json entries of the packages of ``records``: each name's latest file."""
    from rattler import Version  # conda's version ordering, not a hand-written one

    latest: dict[str, tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any] | None]] = {}
    platforms: dict[str, set[str]] = defaultdict(set)
    for rec in records:
        if rec.subdir not in hidden or rec.filename in hidden[rec.subdir]:
            continue
        try:
            version = Version(rec.version)
        except Exception:  # rattler's InvalidVersionError
            # a row ingest would refuse today (an older server, a hand edit): one such row
            # must not take channeldata.json away from every other package of the channel
            log.warning("channeldata of %s leaves out %s/%s: version %r does not parse",
                        channel, rec.subdir, rec.filename, rec.version)
            continue
        platforms[rec.name].add(rec.subdir)
        key = (version, rec.build_number, rec.record.get("timestamp", 0))
        if rec.name not in latest or key > latest[rec.name][0]:
            latest[rec.name] = (key, rec.record, rec.about, rec.run_exports)
    packages: dict[str, Any] = {}
    for name, (_, record, about, run_exports) in sorted(latest.items()):
        entry = {
            "version": record.get("version"),
            "subdirs": sorted(platforms[name]),
            "license": about.get("license") or record.get("license"),
            "summary": about.get("summary"),
            "description": about.get("description"),
            "home": about.get("home"),
            "dev_url": about.get("dev_url"),
            "doc_url": about.get("doc_url"),
            "source_url": about.get("source_url"),
            "timestamp": record.get("timestamp"),
            "run_exports": {record["version"]: run_exports} if run_exports else {},
        }
        packages[name] = {k: v for k, v in entry.items() if v not in (None, "")}
    return packages

"""Materialise a subdir's indexes from the catalog: repodata.json (+ .zst, .gz), CEP-16 shards,
run_exports.json (CEP-12), and channeldata.json (CEP-38) at the channel root.

Incremental: the catalog keeps each record's JSON text, so no package file is read; only the
shards of package names touched since the last build are rewritten, and repodata.json and
run_exports.json are patched (:mod:`repoproxy.pipeline.jsonindex`): the records of the names
touched are read, the rest of each file is copied from the one this process wrote last.
Builds of one subdir are serialised by a file lock (the server and a CLI import may run at
once) and coalesced: a builder that finds the subdir already built at the current generation
returns at once, so a burst of uploads causes far fewer builds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections import UserList, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import zstandard

from repoproxy.models import Channel, PackageRecord
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.pipeline.channeldata import ChanneldataWriter
from repoproxy.pipeline.jsonindex import (
    Layout,
    WholeWriter,
    compress_file,
    identity,
    plan,
    set_aside_twin,
    stage_twin,
    write_planned,
)
from repoproxy.plugins import collect, notify
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import read_snapshot, write_transaction
from repoproxy.storage.pools import ProcessPool
from repoproxy.storage.store import (
    Staging,
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
#: takes ~60 ms, level 1 ~16 ms (21-35 ms measured again on five sessions' two cores, where
#: level 9 took 380 ms for a bigger file than level 1's). zstd's multithreaded mode was no
#: faster at any size here. A publish must be fast: level 1 (a hash-heavy shard index hardly
#: compresses at any level).
ZST_LEVEL = 1
SHARD_ZST_LEVEL = 12  # a shard is small: the level costs nothing here

#: gzip twins, compressed while the main thread writes the rest
_COMPRESSOR = ProcessPool(2, "gzip-twins")


def pack_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record as CEP-16 shards carry it: md5 and sha256 as raw bytes."""
    out = dict(record)
    for key in ("md5", "sha256"):
        if isinstance(out.get(key), str):
            out[key] = bytes.fromhex(out[key])
    return out


def encode_shard(records: dict[str, dict[str, Any]],
                 compressor: zstandard.ZstdCompressor | None = None) -> bytes:
    """A name's shard; ``compressor``: one at SHARD_ZST_LEVEL to reuse (making one per shard
    was half of the compression's cost)."""
    shard: dict[str, Any] = {"packages": {}, "packages.conda": {}, "removed": []}
    for fn in sorted(records):
        key = "packages.conda" if fn.endswith(".conda") else "packages"
        shard[key][fn] = pack_record(records[fn])
    compressor = compressor or zstandard.ZstdCompressor(level=SHARD_ZST_LEVEL)
    return compressor.compress(msgpack.packb(shard, use_bin_type=True))


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


def name_of(filename: str) -> str:
    """The package name a conda file name starts with (``<name>-<version>-<build>.<ext>``:
    version and build have no dash)."""
    return filename.rsplit("-", 2)[0]


def _section(filename: str) -> int:
    """The repodata section of a file: 0 "packages" (.tar.bz2), 1 "packages.conda"."""
    return 1 if filename.endswith(".conda") else 0


def _member(filename: str, record: str) -> bytes:
    """``"<filename>":{record}``: a repodata.json member (the catalog keeps the record's
    JSON text)."""
    return f"{json.dumps(filename)}:{record}".encode()


def _run_exports_member(filename: str, run_exports: str | None) -> bytes:
    """``"<filename>":{"run_exports":{...}}``, as json.dumps(..., sort_keys=True,
    separators=(",", ":")) writes it (run_exports.json, CEP-12)."""
    rx = (json.dumps(json.loads(run_exports), sort_keys=True, separators=(",", ":"))
          if run_exports else "{}")
    return f'{json.dumps(filename)}:{{"run_exports":{rx}}}'.encode()


def _run_exports_pieces(subdir: str) -> list[bytes]:
    return [f'{{"info":{{"subdir":{json.dumps(subdir)}}},"packages":{{'.encode(),
            b'},"packages.conda":{', b"}}"]


@dataclass
class _State:
    """What a build leaves for the next one of the same subdir in this process: where each
    member of repodata.json and run_exports.json lies (no record text: a publish patches
    the files themselves), the files left out as unreadable, and the names' shard digests."""

    key: tuple[str, str, str]  # channel, subdir, the channel's creation time
    built: int  # the catalog generation the files are the image of
    repodata: Layout
    run_exports: Layout
    unreadable: dict[str, str]  # file name -> package name
    shards: dict[str, bytes]  # name -> shard digest, sorted by name


class _Json:
    """One JSON index being rebuilt: its path, its pieces, how a row becomes its member, and
    the layout of the file written last (None: write it whole)."""

    def __init__(self, path: Path, pieces: list[bytes],
                 member: Callable[[str, str, str | None], bytes], old: Layout | None) -> None:
        self.path, self.pieces, self.member, self.old = path, pieces, member, old

    def stage(self, staging: Staging, catalog: Catalog, channel: str, subdir: str,
              rows: list[tuple[str, str, str, str | None]], dirty: set[str],
              left_out: set[str], expected: int | None) -> Layout:
        """Stage the file and its .zst (before it), patched if the previous file is the one
        this process wrote (and the result has the ``expected`` count of members, if given),
        else written whole from the catalog (inside the caller's snapshot)."""
        fd = self._open_previous()
        try:
            if fd is not None and self.old is not None:
                changes: list[dict[str, bytes | None]] = [{} for _ in self.old.sections]
                for name in dirty:
                    for k, section in enumerate(self.old.sections):
                        for fn in section.keys_with_prefix(name + "-"):
                            if name_of(fn) == name:
                                changes[k][fn] = None
                for fn, _, record, run_exports in rows:
                    if fn not in left_out:
                        changes[_section(fn)][fn] = self.member(fn, record, run_exports)
                segments, layout, size = plan(self.old, self.pieces, changes)
                if expected is None or len(layout) == expected:
                    with staging.open(self.zst) as zst, staging.open(self.path) as f:
                        write_planned(f, zst, fd, segments, size, ZST_LEVEL)
                    return layout
                _disagree(channel, subdir, len(layout), expected)
        finally:
            if fd is not None:
                os.close(fd)
        with staging.open(self.zst) as zst, staging.open(self.path) as f:
            writer = WholeWriter(f, self.pieces)
            for conda in (False, True):
                if conda:
                    writer.next_section()
                for fn, _, record, run_exports in catalog.raw_parts_sorted(
                        channel, subdir, conda=conda):
                    if fn not in left_out and readable(fn):
                        writer.member(fn, self.member(fn, record, run_exports))
            layout = writer.close()
            compress_file(f.fileno(), zst, ZST_LEVEL)
        return layout

    @property
    def zst(self) -> Path:
        return self.path.with_name(self.path.name + ".zst")

    def _open_previous(self) -> int | None:
        """The file written last, if it is still the one the layout describes."""
        if self.old is None:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        if identity(fd) != self.old.ident:
            os.close(fd)
            return None
        return fd

    def set_aside_twin(self) -> None:
        """The stale gzip twin out of the way before the file is replaced (the file is then
        served plain until its new twin is in place, never older)."""
        set_aside_twin(self.path)

    def installed(self, layout: Layout) -> Layout:
        layout.ident = identity_of(self.path)
        return layout


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` holds ``data``. A shard file of a build a machine crash cut short
    (renamed, not yet synced) may exist short or empty: the rebuild must rewrite it. A shard
    is a few kB and a publish rewrites few: reading it back costs next to nothing."""
    try:
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def _updated(current: dict[str, bytes], shards: dict[str, str | None]) -> dict[str, bytes]:
    """The names' shard digests (sorted by name) after a build that rewrote ``shards``.

    A new dict (the state keeps the old one until the build is done); sorted again only when
    a name comes or goes."""
    out = dict(current)
    for name, digest in shards.items():
        if digest is None:
            out.pop(name, None)
        else:
            out[name] = bytes.fromhex(digest)
    if len(out) != len(current) or any(name not in current for name in shards):
        out = dict(sorted(out.items()))
    return out


def _unreadable(catalog: Catalog, channel: str, subdir: str) -> dict[str, str]:
    return {fn: n for fn, n in catalog.file_names(channel, subdir) if not readable(fn)}


def _report(channel: str, subdir: str, unreadable: dict[str, str]) -> None:
    if unreadable:
        log.warning("%s/%s: left out of the indexes, clients cannot parse their names "
                    "(remove them): %s", channel, subdir, ", ".join(sorted(unreadable)))


def _disagree(channel: str, subdir: str, found: int, expected: int) -> None:
    log.warning("%s/%s: the index files disagree with the catalog (%d files, expected %d); "
                "writing them whole", channel, subdir, found, expected)


def identity_of(path: Path) -> tuple[int, int, int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return identity(fd)
    finally:
        os.close(fd)


def _gzip_twin(path: Path) -> Staging:
    """The gzip twin of an index file, staged (run in a thread beside the rest of a build)."""
    with open(path, "rb") as src:
        return stage_twin(src.fileno(), path)


class Indexer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        #: the served hidden sets, shared by the conda file views and the read model
        self.hidden_cache = HiddenCache()
        self.builds = 0  # how many builds really ran (tests and the watch plugin read it)
        self._count_lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}
        self._channeldata = ChanneldataWriter()

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
        repodata.json, the hidden list; then run_exports.json (+ .zst); gzip twins last. All
        are fsynced together after the renames and before the generation is marked built (see
        :class:`~repoproxy.storage.store.Staging`). A stale gzip twin is removed before its
        file is replaced (the file is then served plain until the new twin lands), so no
        encoding of a file ever answers older contents.

        repodata.json and run_exports.json are patched: the unchanged runs of members are
        copied from the files the previous build of this process wrote (see
        :mod:`repoproxy.pipeline.jsonindex`), so nothing holds the subdir's records in memory;
        they are written whole, streamed from the catalog, when there is no such build.
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
            # build's, since its commit moved the generation on. A file written whole is
            # streamed from the catalog inside it too.
            with read_snapshot(db):
                generation, built = catalog.subdir_state(channel, subdir)
                if built >= generation and (directory / "repodata.json").exists():
                    return False
                last_dirty, dirty = catalog.dirty_names(channel, subdir)
                state = self._states.pop((channel, subdir), None)
                key = (channel, subdir, ch.created)
                if state is not None and (state.key != key or state.built != built or force):
                    state = None
                hidden = self._excluded(ch, subdir, catalog)
                previous_hidden = self.hidden_files(channel, subdir)
                dirty |= {name_of(fn) for fn in hidden ^ previous_hidden}
                rows = list(catalog.raw_parts(channel, subdir, dirty))
                if state is not None:
                    unreadable = {fn: n for fn, n in state.unreadable.items() if n not in dirty}
                    # name -> shard digest, kept with the state (this process's builds are
                    # the only writers of the catalog's shard rows while it is current)
                    current = state.shards
                else:
                    unreadable = _unreadable(catalog, channel, subdir)
                    current = {name: bytes.fromhex(digest) for name, digest
                               in sorted(catalog.shard_hashes(channel, subdir).items())}
                unreadable.update((fn, n) for fn, n, _, _ in rows if not readable(fn))
                _report(channel, subdir, unreadable)
                left_out = hidden | set(unreadable)
                removed = sorted({str(fn) for fn in collect(
                    self.runtime.pm.hook.repoproxy_removed_files(
                        services=self.runtime, channel=ch, subdir=subdir))})
                repodata = _Json(directory / "repodata.json",
                                 self._repodata_pieces(channel, subdir, removed),
                                 lambda fn, record, _: _member(fn, record),
                                 state.repodata if state else None)
                run_exports = _Json(directory / "run_exports.json", _run_exports_pieces(subdir),
                                    lambda fn, _, rx: _run_exports_member(fn, rx),
                                    state.run_exports if state else None)

                # what clients read first comes first: the changed shards, then the index
                # naming them (a reader never sees an index naming a shard that is not there
                # yet), then repodata.json.zst, repodata.json and the hidden list: the new file
                # is visible. run_exports.json and the gzip twins follow. Nothing waits on the
                # disk before the renames: everything is fsynced at once afterwards, and only
                # then is the generation marked built (a machine crash before that leaves it
                # unbuilt, and start-up recovery rebuilds it, rewriting every file of this
                # build).
                with Staging() as staging:
                    shards = self._stage_shards(staging, channel, subdir, rows, dirty, left_out)
                    current = _updated(current, shards)
                    staging.add(directory / SHARD_INDEX,
                                self._shard_index(channel, subdir, current))
                    layout = repodata.stage(staging, catalog, channel, subdir, rows, dirty,
                                            left_out, None)
                    if hidden != previous_hidden or not (directory / HIDDEN).exists():
                        staging.add(directory / HIDDEN, json.dumps(sorted(hidden)).encode())
                    repodata.set_aside_twin()
                    written = staging.install()
                # the served files: the catalog's but the left-out ones (the policy names
                # files of the catalog only). Counted once the new file is visible (counting
                # 50,000 rows costs a tenth of a publish): a patch that disagrees, which no
                # path should make, is written whole at once, within this same publish
                expected = catalog.count_files(channel, subdir) - len(left_out)
                if len(layout) != expected:
                    _disagree(channel, subdir, len(layout), expected)
                    # e.g. a row written behind the catalog's back (a hand edit, an older
                    # server): everything is read again
                    unreadable = _unreadable(catalog, channel, subdir)
                    _report(channel, subdir, unreadable)
                    left_out = hidden | set(unreadable)
                    repodata.old = run_exports.old = None
                    with Staging() as staging:
                        layout = repodata.stage(staging, catalog, channel, subdir, rows, dirty,
                                                left_out, None)
                        written += staging.install()
                layout = repodata.installed(layout)
                # compressed only now: on a busy machine it would take the CPU from the files
                # that make a publish visible
                twin = _COMPRESSOR.get().submit(_gzip_twin, repodata.path)
                try:
                    with Staging() as staging:
                        rx_layout = run_exports.stage(staging, catalog, channel, subdir, rows,
                                                      dirty, left_out, expected)
                        run_exports.set_aside_twin()
                        written += staging.install()
                except BaseException:
                    with suppress(Exception):  # its temporary file goes too
                        twin.result().discard()
                    raise
                rx_layout = run_exports.installed(rx_layout)
            for each in [twin.result(), _gzip_twin(run_exports.path)]:
                written += each.install()
            sync_written(written)
            with write_transaction(db):
                catalog.mark_built(channel, subdir, generation, last_dirty, shards)
            # only now: a failed build leaves no state, and the next one writes whole
            self._states[(channel, subdir)] = _State(key, generation, layout, rx_layout,
                                                     unreadable, current)
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

    def _excluded(self, channel: Channel, subdir: str, catalog: Catalog) -> set[str]:
        hook = self.runtime.pm.hook.repoproxy_excluded_files
        if not hook.get_hookimpls():
            return set()  # no policy plugin: skip building full records
        records = _LazyRecords(lambda: catalog.packages(channel.name, subdir))
        return {str(fn) for fn in collect(hook(channel=channel, subdir=subdir, records=records,
                                                  services=self.runtime))}

    def _stage_shards(self, staging: Staging, channel: str, subdir: str,
                      rows: list[tuple[str, str, str, str | None]], dirty: set[str],
                      left_out: set[str]) -> dict[str, str | None]:
        """Stage the new shard files of the dirty names; each dirty name's digest (or None:
        the name has no served file left)."""
        by_name: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for fn, name, record, _ in rows:
            if fn not in left_out:
                by_name[name][fn] = json.loads(record)
        out: dict[str, str | None] = {}
        compressor = zstandard.ZstdCompressor(level=SHARD_ZST_LEVEL)
        for name in dirty:
            files = by_name.get(name)
            if not files:
                out[name] = None
                continue
            data = encode_shard(files, compressor)
            digest = hashlib.sha256(data).hexdigest()
            path = self.runtime.store.shard_path(channel, subdir, digest)
            if not _holds(path, data):  # content-addressed: an intact file is already right
                staging.add(path, data)
            out[name] = digest
        return out

    def _shard_index(self, channel: str, subdir: str, shards: dict[str, bytes]) -> bytes:
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
            "shards": shards,
        }
        return bytes(zstandard.ZstdCompressor(level=ZST_LEVEL).compress(
            msgpack.packb(index, use_bin_type=True)))

    def _repodata_pieces(self, channel: str, subdir: str, removed: list[str]) -> list[bytes]:
        """repodata.json around its two sections of members."""
        base_url = self.runtime.settings["repoproxy.base_url"]
        info: dict[str, Any] = {"subdir": subdir}
        if base_url:
            info["base_url"] = f"{base_url.rstrip('/')}/{channel}/{subdir}/"
        return [f'{{"info":{json.dumps(info, sort_keys=True)},"packages":{{'.encode(),
                b'},"packages.conda":{',
                (f'}},"removed":{json.dumps(removed)},'
                 f'"repodata_version":{2 if base_url else 1}}}').encode()]

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
        """Write channeldata.json; with ``names``, only those packages' entries are redone
        (see :mod:`repoproxy.pipeline.channeldata`)."""
        with self._lock(channel, "channeldata"):  # read-modify-write: one writer at a time
            catalog = self.runtime.catalog()
            # a subdir row no current rule allows (see recovery) has no directory to read
            subdirs = [sd for sd in catalog.subdirs(channel) if is_subdir(sd)]
            hidden = {sd: self.hidden_files(channel, sd) for sd in subdirs}
            self._channeldata.write(catalog, self.runtime.store.channel_dir(channel), channel,
                                    subdirs, hidden, names)

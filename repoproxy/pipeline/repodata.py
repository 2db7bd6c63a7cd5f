"""Materialise a subdir's indexes from the catalog: repodata.json (+ .zst, .gz), CEP-16 shards,
run_exports.json (CEP-12), and channeldata.json (CEP-38) at the channel root.

Incremental: the catalog keeps each record's JSON text, so repodata.json is assembled from
strings without reading any package file; only the shards of package names touched since the
last build are rewritten. Builds of one subdir are serialised by a file lock (the server and a
CLI import may run at once) and coalesced: a builder that finds the subdir already built at
the current generation returns at once, so a burst of uploads causes far fewer builds.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import zstandard

from repoproxy.models import PackageRecord
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.plugins import collect, notify
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction
from repoproxy.storage.store import atomic_write, fsync_dir

if TYPE_CHECKING:
    from repoproxy.storage.runtime import Runtime

log = logging.getLogger(__name__)

SHARD_INDEX = "repodata_shards.msgpack.zst"
HIDDEN = ".hidden.json"
ZST_LEVEL = 16  # conda-index's level: small downloads, ~0.1 s for 5000 records
SHARD_ZST_LEVEL = 12


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
        self._cache: dict[Path, tuple[tuple[int, int], frozenset[str]]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> frozenset[str]:
        try:
            st = path.stat()
        except FileNotFoundError:
            return frozenset()
        key = (st.st_mtime_ns, st.st_ino)
        cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        try:
            value = frozenset(json.loads(path.read_bytes()))
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


class Indexer:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        #: the served hidden sets, shared by the conda file views and the read model
        self.hidden_cache = HiddenCache()
        self.builds = 0  # how many builds really ran (tests and the watch plugin read it)
        self._count_lock = threading.Lock()

    @property
    def _zst(self) -> zstandard.ZstdCompressor:
        return zstandard.ZstdCompressor(level=ZST_LEVEL)

    @contextmanager
    def _lock(self, channel: str, subdir: str) -> Iterator[None]:
        locks = self.runtime.store.root / "locks"
        locks.mkdir(exist_ok=True)
        with open(locks / f"{channel}.{subdir}.lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def build(self, channel: str, subdir: str, *, force: bool = False) -> bool:
        """Bring the subdir's files up to the catalog's generation; True if anything was built."""
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
            generation, built = catalog.subdir_state(channel, subdir)
            if built >= generation and (directory / "repodata.json").exists():
                return False
            last_dirty, dirty = catalog.dirty_names(channel, subdir)
            rows = list(catalog.raw_records(channel, subdir))

            hidden = self._excluded(ch, subdir, rows, catalog)
            previous_hidden = self.hidden_files(channel, subdir)
            if hidden != previous_hidden:
                by_file = {fn: name for fn, name, _ in rows}
                dirty |= {by_file[fn] for fn in hidden ^ previous_hidden if fn in by_file}
            unreadable = {fn for fn, _, _ in rows if not readable(fn)}
            if unreadable:
                log.warning("%s/%s: left out of the indexes, clients cannot parse their names "
                            "(remove them): %s", channel, subdir, ", ".join(sorted(unreadable)))
            visible = [r for r in rows if r[0] not in hidden and r[0] not in unreadable]

            shards = self._write_shards(channel, subdir, visible, dirty)
            current = catalog.shard_hashes(channel, subdir)
            current.update({k: v for k, v in shards.items() if v is not None})
            for name, digest in shards.items():
                if digest is None:
                    current.pop(name, None)
            # shards first, then the files that point at them: a reader never sees an index
            # naming a shard that is not there yet
            self._write_json_indexes(channel, subdir, visible, catalog, hidden | unreadable)
            self._write_shard_index(channel, subdir, current)
            atomic_write(directory / HIDDEN, json.dumps(sorted(hidden)).encode())
            with write_transaction(db):
                catalog.mark_built(channel, subdir, generation, last_dirty, shards)
            self._collect_garbage(channel, subdir, catalog)
            with self._count_lock:
                self.builds += 1
            seconds = time.perf_counter() - started
        notify(self.runtime.pm, "repoproxy_repodata_written",
               services=self.runtime, channel=ch, subdir=subdir, path=directory)
        notify(self.runtime.pm, "repoproxy_operation_timed", services=self.runtime,
               operation="index_build", channel=channel, seconds=seconds)
        return True

    def _excluded(
        self, channel: Any, subdir: str, rows: list[tuple[str, str, str]], catalog: Catalog
    ) -> set[str]:
        hook = self.runtime.pm.hook.repoproxy_excluded_files
        if not hook.get_hookimpls():
            return set()  # no policy plugin: skip building full records
        records: list[PackageRecord] = list(catalog.packages(channel.name, subdir))
        return {str(fn) for fn in collect(hook(channel=channel, subdir=subdir, records=records,
                                                  services=self.runtime))}

    def _write_shards(
        self, channel: str, subdir: str, visible: list[tuple[str, str, str]], dirty: set[str]
    ) -> dict[str, str | None]:
        by_name: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for fn, name, rec in visible:
            if name in dirty:
                by_name[name][fn] = json.loads(rec)
        out: dict[str, str | None] = {}
        written: Path | None = None
        for name in dirty:
            if name not in by_name:
                out[name] = None
                continue
            data = encode_shard(by_name[name])
            digest = hashlib.sha256(data).hexdigest()
            path = self.runtime.store.shard_path(channel, subdir, digest)
            if not path.exists():  # content-addressed: an existing file is already right
                atomic_write(path, data, sync_dir=False)
                written = path.parent
            out[name] = digest
        if written is not None:
            fsync_dir(written)  # once for the batch, before the index that names them
        return out

    def _write_shard_index(self, channel: str, subdir: str, shards: dict[str, str]) -> None:
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
        data = self._zst.compress(msgpack.packb(index, use_bin_type=True))
        atomic_write(self.runtime.store.subdir_dir(channel, subdir) / SHARD_INDEX, data)

    def _write_json_indexes(
        self,
        channel: str,
        subdir: str,
        visible: list[tuple[str, str, str]],
        catalog: Catalog,
        hidden: set[str],
    ) -> None:
        directory = self.runtime.store.subdir_dir(channel, subdir)
        base_url = self.runtime.settings["repoproxy.base_url"]
        info: dict[str, Any] = {"subdir": subdir}
        if base_url:
            info["base_url"] = f"{base_url.rstrip('/')}/{channel}/{subdir}/"
        tar = ",".join(f"{json.dumps(fn)}:{rec}" for fn, _, rec in visible
                       if fn.endswith(".tar.bz2"))
        conda = ",".join(f"{json.dumps(fn)}:{rec}" for fn, _, rec in visible
                         if fn.endswith(".conda"))
        # assembled from the catalog's canonical JSON text: no record is parsed or re-encoded
        text = (
            f'{{"info":{json.dumps(info, sort_keys=True)},"packages":{{{tar}}},'
            f'"packages.conda":{{{conda}}},"removed":[],'
            f'"repodata_version":{2 if base_url else 1}}}'
        )
        self._write_json(directory / "repodata.json", text.encode(), zst=True)

        run_exports: dict[str, Any] = {"info": {"subdir": subdir}, "packages": {},
                                       "packages.conda": {}}
        for fn, re_json in catalog.raw_run_exports(channel, subdir):
            if fn in hidden:
                continue
            key = "packages.conda" if fn.endswith(".conda") else "packages"
            run_exports[key][fn] = {"run_exports": json.loads(re_json) if re_json else {}}
        self._write_json(
            directory / "run_exports.json",
            json.dumps(run_exports, sort_keys=True, separators=(",", ":")).encode(),
            zst=True,
        )

    def _write_json(self, path: Path, data: bytes, *, zst: bool) -> None:
        if zst:
            atomic_write(path.with_name(path.name + ".zst"), self._zst.compress(data))
        # a gzip twin lets the server answer Accept-Encoding: gzip without compressing per request
        atomic_write(path.with_name(path.name + ".gz"), gzip.compress(data, 6, mtime=0))
        atomic_write(path, data)

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
    def build_channeldata(self, channel: str) -> None:
        from rattler import Version  # conda's version ordering, not a hand-written one

        catalog = self.runtime.catalog()
        # a subdir row no current rule allows (see recovery) has no directory to read
        subdirs = [sd for sd in catalog.subdirs(channel) if is_subdir(sd)]
        hidden = {sd: self.hidden_files(channel, sd) for sd in subdirs}
        latest: dict[str, tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any] | None]] = {}
        platforms: dict[str, set[str]] = defaultdict(set)
        for rec in catalog.packages(channel):
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
        data = {"channeldata_version": 1, "packages": packages, "subdirs": subdirs}
        path = self.runtime.store.channel_dir(channel) / "channeldata.json"
        self._write_json(path, json.dumps(data, sort_keys=True, indent=2).encode(), zst=False)

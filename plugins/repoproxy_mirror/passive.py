"""Passive mirrors: a pull-through proxy of an upstream channel.

Indexes: the upstream's ``<subdir>/repodata.json`` (its ``.zst`` when it has a good one,
upstream.py) is fetched (with its validators), filtered (the mirror's filters, then the
channel's policy through ``repoproxy_excluded_files`` and the mirror's own), and
turned into this server's own ``repodata.json``, ``.zst``, CEP-16 shard index and shards, with
relative URLs only (an upstream's absolute ``base_url`` never reaches a client, so clients
never bypass the proxy). The cache is fresh for ``repoproxy_mirror.index_freshness`` seconds;
after that it is served as is while one refresh runs in the background, single-flight across
threads and processes (a lock file per subdir). When the upstream is down, stale indexes are
served with an ``X-Repoproxy-Stale: <age>`` header for at most ``repoproxy_mirror.max_stale``
seconds. An upstream 404 is remembered for ``repoproxy_mirror.negative_ttl`` seconds; noarch
always exists (an empty index stands in).

Packages: fetched on first request and relayed to that client while they arrive, hashed and
written beside the cache (relay.py); committed only when the sha256 and size match, else the
client's response is cut. Stored immutable. One download per file across threads and
processes: the others wait on its lock (locks.py) and then read the stored file.

Layout: ``<root>/mirror/cache/<mirror id>/<subdir>/{meta.json, repodata.json,
repodata.json.zst, repodata_shards.msgpack.zst, shards/, pkgs/}``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import zstandard

from repoproxy.errors import NotFound, RepoproxyError
from repoproxy.models import Channel, LeanFile, Privacy
from repoproxy.names import is_package_filename
from repoproxy.pipeline.repodata import SHARD_INDEX, encode_shard
from repoproxy.plugins import collect, notify
from repoproxy.storage.store import atomic_write, fsync_dir

from . import own_policy, shard_gc
from .filters import MirrorFilter
from .locks import file_lock, holding, package_lock
from .model import Mirror
from .own_policy import as_record
from .relay import Relay
from .service import mirror_dir
from .upstream import Pools, Upstream, UpstreamError, UpstreamNotFound, expected

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

log = logging.getLogger(__name__)
INDEXES = ("repodata.json", "repodata.json.zst", SHARD_INDEX)
MAX_INDEX = 1024**3
STALE_HEADER = "X-Repoproxy-Stale"
#: relayed chunks at most (each is what the upstream connection had): fewer, larger chunks
#: cost less per byte (8 MB as 64 KiB chunks took a third longer to relay than as 256 KiB)
RELAY_CHUNK = 256 * 1024
GC_LIMIT = 10_000  # unreferenced shards removed per build at most


@functools.cache
def known_platforms() -> frozenset[str]:
    """The subdirs rattler knows (``linux-64`` ... ``zos-z``), loaded once, when a proxy first
    needs them (rattler is not loaded by the CLI's start-up)."""
    from rattler import Subdir

    return frozenset(str(p) for p in Subdir.all())


def cache_dir(core: Core, mirror_id: str) -> Path:
    return mirror_dir(core) / "cache" / mirror_id


def invalidate(core: Core, mirror: Mirror) -> None:
    """Filters changed: every subdir's index is refetched at its next request."""
    base = cache_dir(core, mirror.id)
    if base.is_dir():
        for meta in base.glob("*/meta.json"):
            with suppress(OSError):
                meta.unlink()


def sweep_partials(core: Core, older_than: float) -> int:
    """Remove the ``.dl-*`` files of first fetches a stopped process left in the proxy cache
    (killed while relaying, or between the last byte and the rename); the count removed.

    Only files untouched for ``older_than`` seconds (the download deadline): no fetch lives
    longer, so a younger one may be another process's relay still in progress (a slow client
    can hold its writes back for long)."""
    base = mirror_dir(core) / "cache"
    limit = time.time() - older_than
    removed = 0
    for directory, _, names in os.walk(base):
        for name in names:
            if name.startswith(".dl-"):
                path = os.path.join(directory, name)  # noqa: PTH118
                with suppress(OSError):
                    if os.stat(path).st_mtime < limit:  # noqa: PTH116
                        os.unlink(path)  # noqa: PTH108
                        removed += 1
    return removed


def drop_cache(core: Core, mirror: Mirror) -> None:
    shutil.rmtree(cache_dir(core, mirror.id), ignore_errors=True)


def _shards_named(path: Path) -> set[str]:
    """The shard digests (hex) a stored shard index names; none when it is missing or bad."""
    try:
        data = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(path.read_bytes()))
        return {bytes(d).hex() for d in data["shards"].values()}
    except (OSError, ValueError, KeyError, TypeError, zstandard.ZstdError,
            msgpack.UnpackException):
        return set()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


class Proxy:
    """One per server root and process (``Core.plugin_state``)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.settings = core.settings
        self._map: tuple[tuple[int, int], dict[str, Mirror]] | None = None
        self._filters: dict[str, tuple[Mirror, MirrorFilter]] = {}
        self._metas: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._records: dict[str, tuple[tuple[int, int], dict[str, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._background: set[tuple[str, str]] = set()
        self._clients: dict[tuple[str, str], Upstream] = {}  # (mirror id, source) -> client
        # strings, made once: the request path stats passive.json on every conda file
        # request, and joins a proxied file's path under the cache (Path joins cost a fifth
        # of a cached proxied package's time)
        self._passive_json = str(mirror_dir(core) / "passive.json")
        self._cache_root = str(mirror_dir(core) / "cache")
        # the settings the hot path reads, as numbers once (a process's settings are fixed)
        self._fresh = float(self.settings["repoproxy_mirror.index_freshness"])
        self._negative = float(self.settings["repoproxy_mirror.negative_ttl"])
        self._max_stale = float(self.settings["repoproxy_mirror.max_stale"])

    def _upstream(self, mirror: Mirror) -> Upstream:
        """The mirror's upstream client, shared by every thread: one pool of connections per
        mirror and source (upstream.Pools), so a first fetch reuses whichever kept-alive
        connection is idle."""
        key = (mirror.id, mirror.source.rstrip("/"))
        up = self._clients.get(key)
        if up is None:
            with self._lock:
                up = self._clients.get(key)
                if up is None:
                    up = self._clients[key] = Upstream(mirror.source, self.settings, Pools(
                        int(self.settings["repoproxy.threads"])))
        return up

    # --- which channels are proxies ------------------------------------------------------
    def mirror_for(self, channel: str) -> Mirror | None:
        path = self._passive_json
        try:
            st = os.stat(path)  # noqa: PTH116 (hot path: str paths)
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_ino)
        cached = self._map
        if cached is None or cached[0] != key:
            mirrors = {}
            for channel_name, raw in (_read_json(Path(path)) or {}).items():
                data = dict(raw)
                data.update(data.pop("filters"))
                mirrors[channel_name] = Mirror(**data)
            with self._lock:
                self._map = cached = (key, mirrors)
        return cached[1].get(channel)

    def _filter(self, mirror: Mirror) -> MirrorFilter:
        """The mirror's compiled filter, kept while its definition is unchanged."""
        cached = self._filters.get(mirror.id)
        # the same object while passive.json is unchanged (mirror_for): no field comparison
        if cached is None or (cached[0] is not mirror and cached[0] != mirror):
            cached = (mirror, MirrorFilter(mirror))
            with self._lock:
                self._filters[mirror.id] = cached
        return cached[1]

    def _proxies_subdir(self, mirror: Mirror, subdir: str) -> bool:
        """Whether a request for ``subdir`` may reach the upstream. With ``--subdirs``, those
        (and noarch); without, the platforms conda knows: any ``<os>-<arch>`` would let a
        client make the proxy ask its upstream, and keep a cache entry, for names without end."""
        if subdir == "noarch":
            return True
        filt = self._filter(mirror)
        return filt.wants_subdir(subdir) if filt.subdirs else subdir in known_platforms()

    def _subdir_dir(self, mirror: Mirror, subdir: str) -> str:
        """The subdir's cache directory, as a string (hot path)."""
        return f"{self._cache_root}/{mirror.id}/{subdir}"

    def _meta(self, directory: str) -> dict[str, Any] | None:
        """meta.json, re-read only when it changes (it is replaced by rename)."""
        path = f"{directory}/meta.json"
        try:
            st = os.stat(path)  # noqa: PTH116 (hot path: str paths)
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_ino)
        cached = self._metas.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        meta = _read_json(Path(path))
        if meta is not None:
            with self._lock:
                self._metas[path] = (key, meta)
        return meta

    def _notify(self, mirror: Mirror, path: str, status: str) -> None:
        notify(self.core.pm, "repoproxy_mirror_upstream", services=self.core,
               mirror=mirror.name, channel=mirror.channel, path=path, status=status)

    # --- serving -----------------------------------------------------------------------------
    def serve(self, request: Any, channel: Channel, mirror: Mirror, subdir: str,
              filename: str) -> Any:
        """A proxied file's answer. The cached case is the hot path: a stat of the subdir's
        meta.json (freshness) and, for a package, of its repodata.json (is the file still
        served?), then the file's own; paths are strings, the hooks are told once each."""
        from repoproxy.web.files import file_response

        if not self._proxies_subdir(mirror, subdir):
            raise NotFound(f"{filename} not found")
        directory = self._subdir_dir(mirror, subdir)
        if filename.startswith("shards/"):
            self.index(mirror, channel, subdir, directory)
            digest = filename.removeprefix("shards/").removesuffix(".msgpack.zst")
            return file_response(request, f"{directory}/shards/{digest}.msgpack.zst",
                                 channel, immutable=True, etag=digest)
        if filename in INDEXES:
            meta = self.index(mirror, channel, subdir, directory)
            response = file_response(request, f"{directory}/{filename}", channel,
                                     immutable=False)
            age = time.time() - meta["fetched_at"]
            if age > self._ttl(meta):
                response.headers[STALE_HEADER] = str(int(age))
            return response
        if not is_package_filename(filename):
            raise NotFound(f"{filename} not found")
        rec = self._record(mirror, channel, subdir, filename, directory)
        get = request.environ["REQUEST_METHOD"] == "GET"
        try:  # stored already: the common case
            response = file_response(request, f"{directory}/pkgs/{filename}", channel,
                                     immutable=True)
            self._notify(mirror, f"{subdir}/{filename}", "hit")
        except NotFound:
            if get and "HTTP_RANGE" not in request.environ:
                streamed = self._stream(request, mirror, channel, subdir, filename, rec)
                if streamed is not None:
                    return streamed
            path = self.package(mirror, channel, subdir, filename, rec)
            response = file_response(request, path, channel, immutable=True)
        if get:
            notify(self.core.pm, "repoproxy_file_served", request=request, channel=channel,
                   subdir=subdir, filename=filename)
        return response

    def lean_file(self, channel: str, subdir: str, filename: str) -> LeanFile | None:
        """The cached file :meth:`serve` would answer with ``file_response`` and nothing
        added, for the server to answer in front of the application (the
        ``repoproxy_channel_file_lean`` hook): an index or a shard of a subdir whose cached
        index is fresh. Anything else (not a proxy, a subdir not proxied, an index never
        fetched, stale or refused upstream, a package) is None: :meth:`serve` answers it.
        The status hook is told the same "hit" :meth:`index` tells, once answered."""
        mirror = self.mirror_for(channel)
        if mirror is None or not self._proxies_subdir(mirror, subdir):
            return None
        directory = self._subdir_dir(mirror, subdir)
        if filename in INDEXES:
            path, etag = f"{directory}/{filename}", None
        elif filename.startswith("shards/"):
            # the shard route let only 64 lower-case hex digits through
            etag = filename.removeprefix("shards/").removesuffix(".msgpack.zst")
            path = f"{directory}/{filename}"
        else:
            return None
        meta = self._meta(directory)
        if (meta is None or time.time() - meta["fetched_at"] > self._ttl(meta)
                or (meta.get("status") == 404 and subdir != "noarch")):
            return None

        def answered() -> None:
            self._notify(mirror, f"{subdir}/repodata.json", "hit")

        return LeanFile(path, etag, answered)

    def _ttl(self, meta: dict[str, Any]) -> float:
        return self._negative if meta.get("status") == 404 else self._fresh

    # --- indexes ---------------------------------------------------------------------------
    def index(self, mirror: Mirror, channel: Channel, subdir: str,
              directory: str | None = None) -> dict[str, Any]:
        """The subdir's cache metadata, fetching or refreshing as needed; raises NotFound for
        a subdir the upstream does not have (noarch excepted)."""
        if directory is None:
            directory = self._subdir_dir(mirror, subdir)
        path = f"{subdir}/repodata.json"
        meta = self._meta(directory)
        if meta is None:
            here = Path(directory)
            with file_lock(here / ".refresh.lock", blocking=True):
                meta = _read_json(here / "meta.json")  # another process may have done it
                if meta is None:
                    meta = self.refresh(mirror, channel, subdir, None)
                else:
                    self._notify(mirror, path, "hit")
        else:
            age = time.time() - meta["fetched_at"]
            if age <= self._ttl(meta):
                self._notify(mirror, path, "hit")
            elif age > self._max_stale and meta.get(
                    "last_error"):
                raise UpstreamError(f"the upstream of mirror {mirror.name!r} has been failing "
                                    "for longer than repoproxy_mirror.max_stale")
            else:
                self._notify(mirror, path, "stale")
                self._refresh_in_background(mirror, channel, subdir)
        if meta.get("status") == 404 and subdir != "noarch":
            raise NotFound(f"{path} not found")
        return meta  # shared with the cache: read it, never change it

    def _refresh_in_background(self, mirror: Mirror, channel: Channel, subdir: str) -> None:
        key = (mirror.id, subdir)
        with self._lock:
            if key in self._background:
                return
            self._background.add(key)

        def work() -> None:
            directory = cache_dir(self.core, mirror.id) / subdir
            try:
                with file_lock(directory / ".refresh.lock", blocking=False) as mine:
                    if not mine:
                        return  # another process is refreshing it
                    meta = _read_json(directory / "meta.json")
                    if meta is not None and time.time() - meta["fetched_at"] <= self._ttl(meta):
                        return
                    self.refresh(mirror, channel, subdir, meta)
            except RepoproxyError as e:
                log.warning("mirror %s: refresh of %s failed: %s", mirror.name, subdir,
                            e.message)
            except Exception:
                log.exception("mirror %s: refresh of %s failed", mirror.name, subdir)
            finally:
                with self._lock:
                    self._background.discard(key)

        threading.Thread(target=work, name=f"mirror-refresh-{mirror.name}-{subdir}",
                         daemon=True).start()

    def refresh(self, mirror: Mirror, channel: Channel, subdir: str,
                meta: dict[str, Any] | None) -> dict[str, Any]:
        """Revalidate with the upstream and rebuild the served files; the caller holds the
        subdir's refresh lock."""
        directory = cache_dir(self.core, mirror.id) / subdir
        path = f"{subdir}/repodata.json"
        validators, previous = {}, None
        if meta and meta.get("status") == 200:
            previous = meta.get("source", "repodata.json")
            if meta.get("etag"):
                validators["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                validators["If-Modified-Since"] = meta["last_modified"]
        up = self._upstream(mirror)
        now = time.time()
        try:
            got = up.index(subdir, MAX_INDEX, previous, validators)
            if got.data is None:  # 304: the cache is still right
                assert meta is not None
                meta = dict(meta, fetched_at=now)
                meta.pop("last_error", None)
            else:
                self._build(mirror, channel, subdir, got.data)
                meta = {"fetched_at": now, "status": 200, "source": got.source,
                        "etag": got.headers.get("ETag"),
                        "last_modified": got.headers.get("Last-Modified")}
            self._notify(mirror, path, "miss")
        except UpstreamNotFound:
            self._notify(mirror, path, "miss")
            if subdir == "noarch":
                self._build(mirror, channel, subdir, {})  # noarch always exists
            meta = {"fetched_at": now, "status": 404}
        except UpstreamError as e:
            self._notify(mirror, path, "error")
            if meta is not None:
                atomic_write(directory / "meta.json", json.dumps(
                    dict(meta, last_error=e.message, failed_at=now)).encode())
            raise UpstreamError(e.message) from None
        atomic_write(directory / "meta.json", json.dumps(meta).encode())
        return meta

    def _build(self, mirror: Mirror, channel: Channel, subdir: str, data: dict[str, Any]) -> None:
        directory = cache_dir(self.core, mirror.id) / subdir
        kept = self._filter(mirror).select(data, subdir) if data else {}
        # the channel's policy, or (--use-channel-policy False) not; the mirror's own on top
        hidden = self._hidden(channel, subdir, kept) if mirror.use_channel_policy else set()
        hidden |= own_policy.hidden(self.core, mirror, channel, subdir, kept)
        records = {fn: rec for fn, rec in kept.items() if fn not in hidden}
        removed = [fn for fn in data.get("removed") or () if isinstance(fn, str)]
        by_name: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for fn, rec in records.items():
            by_name[str(rec.get("name", ""))][fn] = rec
        shards: dict[str, bytes] = {}
        written = False
        for name, recs in sorted(by_name.items()):
            blob = encode_shard(recs)
            digest = hashlib.sha256(blob).digest()
            shard = directory / "shards" / f"{digest.hex()}.msgpack.zst"
            if not shard.exists():  # content-addressed: an existing file is already right
                atomic_write(shard, blob, sync_dir=False)
                written = True
            shards[name] = digest
        if written:
            fsync_dir(directory / "shards")
        zst = zstandard.ZstdCompressor(level=10)
        index = {"version": 1,
                 "info": {"subdir": subdir, "base_url": "./", "shards_base_url": "./shards/",
                          "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                 "shards": shards}
        # the upstream's info (base_url above all) stays upstream: every URL is ours
        repodata = {
            "info": {"subdir": subdir},
            "packages": {fn: r for fn, r in sorted(records.items()) if not fn.endswith(".conda")},
            "packages.conda": {fn: r for fn, r in sorted(records.items())
                               if fn.endswith(".conda")},
            "removed": removed,
            "repodata_version": 1,
        }
        text = json.dumps(repodata, separators=(",", ":")).encode()
        named = {d.hex() for d in shards.values()}
        dropped = _shards_named(directory / SHARD_INDEX) - named
        # shards first, then the indexes that name them
        atomic_write(directory / SHARD_INDEX, zst.compress(msgpack.packb(index,
                                                                         use_bin_type=True)))
        atomic_write(directory / "repodata.json.zst", zst.compress(text))
        atomic_write(directory / "repodata.json", text)
        now = time.time()
        shard_gc.mark_dropped(directory / "shards", dropped, now)
        shard_gc.collect(directory / "shards", named,
                         float(self.settings["repoproxy_mirror.shard_grace"]), now, GC_LIMIT)

    def _hidden(self, channel: Channel, subdir: str, kept: dict[str, dict[str, Any]]) -> set[str]:
        """The channel's policy, asked exactly as for uploaded files."""
        hook = self.core.pm.hook.repoproxy_excluded_files
        if not hook.get_hookimpls() or not kept:
            return set()
        records = [as_record(channel.name, subdir, fn, rec) for fn, rec in kept.items()]
        return {str(fn) for fn in collect(hook(channel=channel, subdir=subdir, records=records,
                                                  services=self.core))}

    def _served_records(self, directory: str) -> dict[str, dict[str, Any]]:
        path = f"{directory}/repodata.json"
        try:
            st = os.stat(path)  # noqa: PTH116 (hot path: str paths)
        except FileNotFoundError:
            return {}
        key = (st.st_mtime_ns, st.st_ino)
        cached = self._records.get(path)
        if cached and cached[0] == key:
            return cached[1]
        data = _read_json(Path(path)) or {}
        recs = {**(data.get("packages") or {}), **(data.get("packages.conda") or {})}
        with self._lock:
            self._records[path] = (key, recs)
        return recs

    # --- packages --------------------------------------------------------------------------
    def _record(self, mirror: Mirror, channel: Channel, subdir: str, filename: str,
                directory: str | None = None) -> dict[str, Any]:
        if directory is None:
            directory = self._subdir_dir(mirror, subdir)
        self.index(mirror, channel, subdir, directory)
        rec = self._served_records(directory).get(filename)
        if rec is None:
            # not upstream, filtered out, or hidden by policy: all alike absent
            raise NotFound(f"{filename} not found")
        return rec

    def _stream(self, request: Any, mirror: Mirror, channel: Channel, subdir: str,
                filename: str, rec: dict[str, Any]) -> Any | None:
        """A first fetch relayed while it is verified (relay.py), or None when the file is
        stored or another request (any process) is fetching it: then :meth:`package`
        waits for that file."""
        from pyramid.response import Response

        from repoproxy.web.files import CONTENT_TYPES

        directory = cache_dir(self.core, mirror.id) / subdir
        stored = directory / "pkgs" / filename
        if stored.exists():
            return None
        release = package_lock(directory / "pkgs", filename, blocking=False)
        if release is None:
            return None
        relay = None
        try:
            if stored.exists():  # stored by whoever held the lock before us
                return None
            up = self._upstream(mirror)
            path = f"{subdir}/{filename}"
            sha, size = expected(rec)
            with self._fetching(mirror, path, filename):
                r = up.get(path)
            if size is None and r.headers.get("Content-Length", "").isdigit():
                size = int(r.headers["Content-Length"])
            check = up.verifier(path, sha, size,
                                int(self.settings["repoproxy.max_upload_size"]))

            def done(status: str) -> None:
                self._notify(mirror, path, status)
                if status == "miss":  # delivered whole and verified: only then a download
                    notify(self.core.pm, "repoproxy_file_served", request=request,
                           channel=channel, subdir=subdir, filename=filename)

            relay = Relay(r, up.arriving(r, path, RELAY_CHUNK), check, stored, release, done)
        finally:
            if relay is None:
                release()
        response = Response(content_type=CONTENT_TYPES.get(Path(filename).suffix,
                                                           "application/octet-stream"))
        response.app_iter = relay
        if size is not None:
            response.content_length = size
        scope = "public" if channel.privacy == Privacy.PUBLIC else "private"
        response.cache_control = f"{scope}, max-age=31536000, immutable"
        return response

    @contextmanager
    def _fetching(self, mirror: Mirror, path: str, filename: str) -> Iterator[None]:
        """An upstream request for a package: its 404 is ours (a miss), any other failure is
        told to the status hook and raised as it is."""
        try:
            yield
        except UpstreamNotFound:
            self._notify(mirror, path, "miss")
            raise NotFound(f"{filename} not found") from None
        except UpstreamError:
            self._notify(mirror, path, "error")
            raise

    def package(self, mirror: Mirror, channel: Channel, subdir: str, filename: str,
                rec: dict[str, Any] | None = None) -> Path:
        directory = cache_dir(self.core, mirror.id) / subdir
        stored = directory / "pkgs" / filename
        path = f"{subdir}/{filename}"
        if rec is None:
            rec = self._record(mirror, channel, subdir, filename)
        if stored.exists():
            self._notify(mirror, path, "hit")
            return stored
        with holding(directory / "pkgs", filename):
            if stored.exists():  # fetched by whoever held the lock before us
                self._notify(mirror, path, "hit")
                return stored
            up = self._upstream(mirror)
            sha, size = expected(rec)
            with self._fetching(mirror, path, filename):
                tmp = up.download(path, directory / "pkgs", sha, size,
                                  int(self.settings["repoproxy.max_upload_size"]))
            os.replace(tmp, stored)
            fsync_dir(stored.parent)
            self._notify(mirror, path, "miss")
        return stored


def proxy(core: Core) -> Proxy:
    return core.plugin_state("repoproxy_mirror.proxy", lambda: Proxy(core))

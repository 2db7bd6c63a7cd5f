"""Conda-facing GET/HEAD of channel files, served straight from the materialised tree.

Per request: the auth check (one catalog lookup), a stat of the file, and for package files a
stat of the subdir's hidden-files list (cached by mtime). No other catalog query.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from pyramid.response import FileResponse
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.pipeline.repodata import HIDDEN, SHARD_INDEX
from repoproxy.plugins import notify

log = logging.getLogger(__name__)

INDEX_FILES = frozenset(
    {"repodata.json", "repodata.json.zst", SHARD_INDEX, "run_exports.json",
     "run_exports.json.zst"}
)
GZIP_TWINS = frozenset({"repodata.json", "run_exports.json", "channeldata.json"})
CONTENT_TYPES = {
    ".json": "application/json",
    ".zst": "application/zstd",
    ".conda": "application/octet-stream",
    ".bz2": "application/x-bzip2",
}


class HiddenCache:
    """The subdir's hidden files (policy), re-read only when the file changes."""

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
        value = frozenset(json.loads(path.read_bytes()))
        with self._lock:
            self._cache[path] = (key, value)
        return value


def _missing(name: str) -> NotFound:
    return NotFound(f"{name} not found")


def file_response(request: Any, path: Path, channel: Channel, *, immutable: bool,
                  etag: str | None = None) -> Any:
    accepts_gzip = "gzip" in (request.headers.get("Accept-Encoding") or "")
    encoding = None
    if path.name in GZIP_TWINS and accepts_gzip:
        gz = path.with_name(path.name + ".gz")
        if gz.exists():
            path, encoding = gz, "gzip"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _missing(path.name) from None
    suffix = ".json" if encoding else path.suffix
    response = FileResponse(str(path), request=request,
                            content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"))
    # strong validator: files are only ever replaced by rename, never changed in place, so
    # inode + mtime + size change whenever the bytes do
    response.etag = (etag or f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}") + (
        "-gz" if encoding else "")
    if encoding:
        response.content_encoding = encoding
    if path.name.removesuffix(".gz") in GZIP_TWINS:
        response.vary = ("Accept-Encoding",)
    scope = "public" if channel.privacy == Privacy.PUBLIC else "private"
    if immutable:
        response.cache_control = f"{scope}, max-age=31536000, immutable"
    else:
        max_age = request.services.settings["repoproxy.index_max_age"]
        response.cache_control = f"{scope}, max-age={max_age}"
    response.conditional_response = True
    return response


@view_config(route_name="channel.file", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def channel_file(request: Any) -> Any:
    md = request.matchdict
    channel = request.context.channel
    subdir, filename = md["subdir"], md["filename"]
    if not is_subdir(subdir):
        raise _missing(f"{md['channel']}/{subdir}")
    store = request.services.store
    directory = store.subdir_dir(channel.name, subdir)
    if filename in INDEX_FILES:
        if not (directory / filename).exists() and subdir == "noarch":
            # every channel serves noarch/repodata.json from its first moment (clients treat
            # a missing noarch as a missing channel): build it if a crash left it unbuilt
            request.services.indexer.build(channel.name, subdir)
        return file_response(request, directory / filename, channel, immutable=False)
    package = filename.removesuffix(".attestation.json")
    if is_package_filename(package):
        hidden = request.registry.hidden_cache.get(directory / HIDDEN)
        if package in hidden:
            raise _missing(filename)
        response = file_response(request, directory / filename, channel, immutable=True)
        if request.method == "GET" and package == filename:
            _served(request, channel, subdir, filename)
        return response
    raise _missing(filename)


def _served(request: Any, channel: Channel, subdir: str, filename: str) -> None:
    # observers (download counting) are isolated one by one: a failing plugin neither turns
    # the download into an error nor silences the observers after it
    notify(request.services.pm, "repoproxy_file_served", request=request, channel=channel,
           subdir=subdir, filename=filename)


@view_config(route_name="channel.shard", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def channel_shard(request: Any) -> Any:
    md = request.matchdict
    channel = request.context.channel
    name = md["filename"]
    digest = name.removesuffix(".msgpack.zst")
    if not is_subdir(md["subdir"]) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise _missing(name)
    path = request.services.store.shard_path(channel.name, md["subdir"], digest)
    return file_response(request, path, channel, immutable=True, etag=digest)


@view_config(route_name="channel.root_file", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def channel_root_file(request: Any) -> Any:
    md = request.matchdict
    channel = request.context.channel
    if md["filename"] != "channeldata.json":
        raise _missing(md["filename"])
    path = request.services.store.channel_dir(channel.name) / "channeldata.json"
    if not path.exists():
        request.services.indexer.build_channeldata(channel.name)
    return file_response(request, path, channel, immutable=False)



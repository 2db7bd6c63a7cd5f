"""Serving one materialised file (an index, a package, an SBOM) with validators and the
cache policy of its channel. Shared by the conda file views and plugins' views."""

from __future__ import annotations

import functools
import os
from email.utils import formatdate
from pathlib import Path
from typing import Any

from pyramid.response import FileIter, Response

from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy

#: bytes per read where a file is sent through Python (no sendfile)
BLOCK = 64 * 1024
#: the request headers webob's conditional response app reads
CONDITIONAL_HEADERS = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
GZIP_TWINS = frozenset({"repodata.json", "run_exports.json", "channeldata.json"})
CONTENT_TYPES = {
    ".json": "application/json",
    ".zst": "application/zstd",
    ".conda": "application/octet-stream",
    ".bz2": "application/x-bzip2",
}


def stat_etag(st: os.stat_result) -> str:
    """nginx's strong validator for a static file, so that a file answers with the same ETag
    whether repoproxy or its nginx front (docs: README "Production") serves it: mtime in whole
    seconds and size, in hex. Files are only ever replaced by rename, and the store moves a
    replacement's mtime on when it would otherwise repeat both (storage/store.py,
    ``distinct_stamp``), so the pair changes whenever the bytes do. A gzip twin is a file of
    its own with its own stamp."""
    return f"{int(st.st_mtime):x}-{st.st_size:x}"


def file_response(request: Any, path: Path | str, channel: Channel, *, immutable: bool,
                  etag: str | None = None) -> Any:
    """A 200 (its bytes through ``wsgi.file_wrapper``) or a 304 decided from a stat, with
    validators and the channel's cache policy; Range and HEAD are webob's (the response is
    conditional). Raises NotFound when the file is absent.

    On the hot path: headers are written as a list (webob's property setters cost about as
    much as the rest of the request), paths are strings."""
    name = os.path.basename(path)  # noqa: PTH119 (hot path: str paths)
    environ = request.environ
    cache = cache_control(channel.privacy == Privacy.PUBLIC, immutable,
                          request.registry.services.settings["repoproxy.index_max_age"])
    # validators or a Range to look at: else neither a 304 nor webob's conditional answering
    # (which costs a third of a small 200) can apply
    conditional = any(h in environ for h in CONDITIONAL_HEADERS)
    for candidate, encoding in candidates(os.fspath(path), name, environ):
        try:
            st = os.stat(candidate)  # noqa: PTH116 (hot path: str paths)
        except FileNotFoundError:
            continue
        tag = etag or stat_etag(st)
        if conditional and _not_modified(request, tag, st.st_mtime):
            # decided from the stat alone: the file is not opened for a 304
            return NotModified(status=304, headerlist=validators(tag, st, name, encoding, cache))
        try:
            f = open(candidate, "rb")  # noqa: SIM115 - owned by the response's app_iter
        except FileNotFoundError:  # replaced or removed since the stat
            continue
        # size and validators from the open file, not the path: an index is replaced by
        # rename at any moment, and a length taken from the next version truncates or pads
        # this one (pyramid's FileResponse stats the path, then opens it)
        st = os.fstat(f.fileno())
        headers = body_headers(etag or stat_etag(st), st, name, encoding, cache)
        wrapper = environ.get("wsgi.file_wrapper")
        return Response(headerlist=headers, conditional_response=conditional,
                        app_iter=wrapper(f, BLOCK) if wrapper else FileIter(f, BLOCK))
    raise NotFound(f"{name} not found")


def candidates(base: str, name: str, environ: dict[str, Any]
               ) -> tuple[tuple[str, str | None], ...]:
    """The files that may answer a request for ``base``, in order, with their encoding.

    A gzip twin may vanish at any moment (a publish removes it before replacing its file, see
    Indexer._write_json): then the file itself is answered, plain."""
    if name in GZIP_TWINS and "gzip" in (environ.get("HTTP_ACCEPT_ENCODING") or ""):
        return ((base + ".gz", "gzip"), (base, None))
    return ((base, None),)


def cache_control(public: bool, immutable: bool, max_age: int) -> str:
    """The Cache-Control of a channel's file: ``public`` only for a public channel's."""
    scope = "public" if public else "private"
    return f"{scope}, max-age=31536000, immutable" if immutable else f"{scope}, max-age={max_age}"


def body_headers(tag: str, st: os.stat_result, name: str, encoding: str | None, cache: str
                 ) -> list[tuple[str, str]]:
    """The headers of a 200 (or its HEAD) of a file whose open descriptor's stat is ``st``."""
    suffix = ".json" if encoding else os.path.splitext(name)[1]  # noqa: PTH122 (hot path: str paths)
    return [("Content-Type", CONTENT_TYPES.get(suffix, "application/octet-stream")),
            *validators(tag, st, name, encoding, cache, length=st.st_size)]


def validators(tag: str, st: os.stat_result, name: str, encoding: str | None, cache: str,
               length: int | None = None) -> list[tuple[str, str]]:
    """Validators and cache headers (all a 304 carries), with Content-Length for a body."""
    # nginx's validator scheme (see stat_etag), so answers agree with and without the front;
    # a gzip twin is a file of its own, with its own stamp
    headers = [("Last-Modified", http_date(st.st_mtime))]
    if length is not None:
        headers.append(("Content-Length", str(length)))
    headers.append(("ETag", f'"{tag}"'))
    if encoding:
        headers.append(("Content-Encoding", encoding))
    if name.removesuffix(".gz") in GZIP_TWINS:
        headers.append(("Vary", "Accept-Encoding"))
    headers.append(("Cache-Control", cache))
    return headers


@functools.lru_cache(maxsize=1024)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def http_date(mtime: float) -> str:
    """An HTTP date of a file time, in whole seconds (as webob writes Last-Modified)."""
    return _http_date(int(mtime))


class NotModified(Response):
    """A 304 built without opening the file. It carries the validators and cache headers, but
    no Content-Type or Content-Length (what a view sets on it afterwards is dropped when it is
    sent), as webob's own conditional 304 does."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers
                    if k.lower() not in ("content-type", "content-length")]
            return start_response(status, kept, exc_info) if exc_info else start_response(
                status, kept)

        return super().__call__(environ, start)


def _not_modified(request: Any, etag: str, mtime: float) -> bool:
    """RFC 9110 13.2.2 for GET/HEAD: If-None-Match decides when present, else
    If-Modified-Since (whole seconds, as Last-Modified is sent)."""
    if request.method not in ("GET", "HEAD"):
        return False
    if_none_match = request.environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        # a client revalidating sends back the one tag it got: no parsing for that
        return if_none_match == f'"{etag}"' or etag in request.if_none_match
    since = request.if_modified_since if "If-Modified-Since" in request.headers else None
    return since is not None and int(mtime) <= since.timestamp()

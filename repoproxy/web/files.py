"""Serving one materialised file (an index, a package, an SBOM) with validators and the
cache policy of its channel. Shared by the conda file views and plugins' views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyramid.response import FileIter, Response

from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy

_BLOCK = 64 * 1024
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


def file_response(request: Any, path: Path, channel: Channel, *, immutable: bool,
                  etag: str | None = None) -> Any:
    accepts_gzip = "gzip" in (request.headers.get("Accept-Encoding") or "")
    # a gzip twin may vanish at any moment (a publish removes it before replacing its file,
    # see Indexer._write_json): then the file itself is answered, plain
    candidates: list[tuple[Path, str | None]] = []
    if path.name in GZIP_TWINS and accepts_gzip:
        candidates.append((path.with_name(path.name + ".gz"), "gzip"))
    candidates.append((path, None))
    for path, encoding in candidates:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        tag = etag or stat_etag(st)
        if _not_modified(request, tag, st.st_mtime):
            # decided from the stat alone: the file is not opened for a 304
            response: Response = NotModified(status=304)
            response.last_modified = st.st_mtime
            break
        try:
            f = open(path, "rb")  # noqa: SIM115 - owned by the response's app_iter
        except FileNotFoundError:  # replaced or removed since the stat
            continue
        # size and validators from the open file, not the path: an index is replaced by
        # rename at any moment, and a length taken from the next version truncates or pads
        # this one (pyramid's FileResponse stats the path, then opens it)
        st = os.fstat(f.fileno())
        # nginx's validator scheme (see stat_etag), so answers agree with and without the
        # front; a gzip twin is a file of its own, with its own stamp
        tag = etag or stat_etag(st)
        suffix = ".json" if encoding else path.suffix
        response = Response(content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"))
        response.last_modified = st.st_mtime
        wrapper = request.environ.get("wsgi.file_wrapper")
        response.app_iter = wrapper(f, _BLOCK) if wrapper else FileIter(f, _BLOCK)
        response.content_length = st.st_size
        break
    else:
        raise NotFound(f"{path.name} not found")
    response.etag = tag
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
    response.conditional_response = response.status_int == 200
    return response


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
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return etag in request.if_none_match
    since = request.if_modified_since if "If-Modified-Since" in request.headers else None
    return since is not None and int(mtime) <= since.timestamp()

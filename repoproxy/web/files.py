"""Serving one materialised file (an index, a package, an SBOM) with validators and the
cache policy of its channel. Shared by the conda file views and plugins' views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyramid.response import FileResponse, Response

from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy

GZIP_TWINS = frozenset({"repodata.json", "run_exports.json", "channeldata.json"})
CONTENT_TYPES = {
    ".json": "application/json",
    ".zst": "application/zstd",
    ".conda": "application/octet-stream",
    ".bz2": "application/x-bzip2",
}


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
        raise NotFound(f"{path.name} not found") from None
    suffix = ".json" if encoding else path.suffix
    # strong validator: files are only ever replaced by rename, never changed in place, so
    # inode + mtime + size change whenever the bytes do
    tag = (etag or f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}") + (
        "-gz" if encoding else "")
    if _not_modified(request, tag, st.st_mtime):
        # decided from the stat alone: the file is not opened for a 304
        response = NotModified(status=304)
        response.last_modified = st.st_mtime
    else:
        response = FileResponse(str(path), request=request,
                                content_type=CONTENT_TYPES.get(suffix,
                                                               "application/octet-stream"))
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

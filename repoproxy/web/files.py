"""Serving one materialised file (an index, a package, an SBOM) with validators and the
cache policy of its channel. Shared by the conda file views and plugins' views."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyramid.response import FileResponse

from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy

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
    response = FileResponse(str(path), request=request,
                            content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"))
    response.etag = etag or stat_etag(st)
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

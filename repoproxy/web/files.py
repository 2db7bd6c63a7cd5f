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
    for path, encoding in candidates:  # noqa: B007 - the pair the loop breaks on is used
        try:
            f = open(path, "rb")  # noqa: SIM115 - owned by the response's app_iter
        except FileNotFoundError:
            continue
        break
    else:
        raise NotFound(f"{path.name} not found")
    # size and validators from the open file, not the path: an index is replaced by rename
    # at any moment, and a length taken from the next version truncates or pads this one
    # (pyramid's FileResponse stats the path, then opens it)
    st = os.fstat(f.fileno())
    suffix = ".json" if encoding else path.suffix
    response = Response(conditional_response=True,
                        content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"))
    response.last_modified = st.st_mtime
    wrapper = request.environ.get("wsgi.file_wrapper")
    response.app_iter = wrapper(f, _BLOCK) if wrapper else FileIter(f, _BLOCK)
    response.content_length = st.st_size
    # nginx's validator scheme (see stat_etag), so answers agree with and without the front;
    # a gzip twin is a file of its own, with its own stamp
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

"""Package bytes through an nginx front (``X-Accel-Redirect``).

With ``repoproxy.accel_redirect`` set (the front's ``internal`` location, e.g. ``/_files/``),
repoproxy still decides everything about a package file: access, the policy-hidden set, that
the file exists, the download count. It then answers with an empty body and
``X-Accel-Redirect: <prefix><channel>/<subdir>/<filename>``, and nginx sends the bytes from the
tree with the validators it computes itself (the same ones repoproxy would send:
web/files.py ``stat_etag``), Range and 304 included. Only set it when every request reaches
repoproxy through that front: anything else would get an empty 200.
"""

from __future__ import annotations

import functools
import os
import stat
from typing import Any
from urllib.parse import quote

from pyramid.response import Response

from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy
from repoproxy.web.files import CONTENT_TYPES

#: response header naming the cache policy for the front's internal location to copy (nginx
#: keeps only a few upstream headers across an internal redirect)
CACHE_HEADER = "X-Repoproxy-Cache-Control"
_CACHE = {scope: f"{scope}, max-age=31536000, immutable" for scope in ("public", "private")}


def accel_prefix(request: Any) -> str:
    return str(request.services.settings["repoproxy.accel_redirect"] or "")


@functools.lru_cache(maxsize=4096)
def _target(prefix: str, channel: str, subdir: str, filename: str) -> str:
    """The internal location's URL of a file (kept: the same files are asked for all day)."""
    return f"{prefix.rstrip('/')}/{quote(channel)}/{quote(subdir)}/{quote(filename)}"


def accel_response(request: Any, prefix: str, path: str, channel: Channel, subdir: str,
                   filename: str) -> Any:
    """The front's answer for one immutable file of the tree, decided and checked here."""
    if not is_regular_file(path):
        raise NotFound(f"{filename} not found")
    return Response(status=200, headerlist=accel_headers(prefix, channel, subdir, filename))


def is_regular_file(path: str) -> bool:
    """What the front may be sent to: a regular file of the tree (not a directory)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)  # noqa: PTH116 (hot path: str paths)
    except OSError:
        return False


def accel_headers(prefix: str, channel: Channel, subdir: str, filename: str
                  ) -> list[tuple[str, str]]:
    """The headers of the front's answer (its body is empty), for the application's view
    and the server's lean path alike."""
    scope = "public" if channel.privacy == Privacy.PUBLIC else "private"
    # nginx keeps the upstream's Content-Type across the redirect: the one repoproxy sends
    return [
        ("Content-Type", CONTENT_TYPES.get(os.path.splitext(filename)[1],  # noqa: PTH122
                                           "application/octet-stream")),
        ("X-Accel-Redirect", _target(prefix, channel.name, subdir, filename)),
        (CACHE_HEADER, _CACHE[scope]),
        # last, where webob puts it when it sets the empty body's length
        ("Content-Length", "0"),
    ]

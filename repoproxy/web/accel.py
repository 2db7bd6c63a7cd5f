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

from pathlib import Path
from typing import Any
from urllib.parse import quote

from pyramid.response import Response

from repoproxy.errors import NotFound
from repoproxy.models import Channel, Privacy
from repoproxy.web.files import CONTENT_TYPES

#: response header naming the cache policy for the front's internal location to copy (nginx
#: keeps only a few upstream headers across an internal redirect)
CACHE_HEADER = "X-Repoproxy-Cache-Control"


def accel_prefix(request: Any) -> str:
    return str(request.services.settings["repoproxy.accel_redirect"] or "")


def accel_response(request: Any, prefix: str, path: Path, channel: Channel, subdir: str,
                   filename: str) -> Any:
    """The front's answer for one immutable file of the tree, decided and checked here."""
    if not path.is_file():
        raise NotFound(f"{filename} not found")
    scope = "public" if channel.privacy == Privacy.PUBLIC else "private"
    # nginx keeps the upstream's Content-Type across the redirect: the one repoproxy sends
    response = Response(status=200, content_type=CONTENT_TYPES.get(
        path.suffix, "application/octet-stream"), charset=None)
    response.headers["X-Accel-Redirect"] = (
        f"{prefix.rstrip('/')}/{quote(channel.name)}/{quote(subdir)}/{quote(filename)}")
    response.headers[CACHE_HEADER] = f"{scope}, max-age=31536000, immutable"
    return response

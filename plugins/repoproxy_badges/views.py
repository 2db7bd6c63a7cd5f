"""The badge route: ``/api/channels/<ch>/badges/<name>/<kind>.svg``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.view import view_config

from repoproxy.errors import CredentialsInvalid, NotFound
from repoproxy.models import Access, Channel, PackageRecord
from repoproxy.plugins import collect
from repoproxy.web.access import AuthenticationRequired, require_channel

from . import KINDS
from .render import render

MAX_AGE = 300


def includeme(config: Configurator) -> None:
    config.add_route("badges.badge", "/api/channels/{channel}/badges/{name}/{kind}.svg")
    config.scan(".views")


def _missing() -> NotFound:
    # one body for every refusal: missing channel, package, kind, or no/too strong token
    return NotFound("badge not found")


def readable_channel(request: Any) -> Channel:
    try:
        channel = require_channel(request, request.matchdict["channel"])
        via_query = request.environ.get("repoproxy.query_token") is not None
        access = request.identity.access(channel.name)
    except (AuthenticationRequired, NotFound, CredentialsInvalid):
        raise _missing() from None
    if via_query and access is not None and access != Access.READ:
        raise _missing()
    return channel


def relative(ms: int, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    seconds = max(0, int(now.timestamp() - ms / 1000))
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def message(request: Any, channel: Channel, kind: str, records: list[PackageRecord]
            ) -> tuple[str, str, str]:
    from repoproxy.web.views.details import latest

    newest = latest(records)
    if kind == "version":
        return "version", newest.version, "blue"
    if kind == "license":
        return "license", newest.record.get("license") or "unknown", "green"
    if kind == "platforms":
        return "platforms", " | ".join(sorted({r.subdir for r in records})), "lightgrey"
    if kind == "downloads":
        total, known = 0, False
        for rec in records:
            for extra in collect(request.services.pm.hook.repoproxy_package_extra(
                    request=request, channel=channel, record=rec)):
                if "downloads" in extra:
                    known = True
                    total += int(extra["downloads"])
        return "downloads", str(total) if known else "n/a", "brightgreen"
    stamp = max(r.indexed_timestamp for r in records)
    if kind == "latest_release_date":
        day = datetime.fromtimestamp(stamp / 1000, UTC).date().isoformat()
        return "latest release date", day, "orange"
    return "latest release", relative(stamp), "orange"


@view_config(route_name="badges.badge", request_method=("GET", "HEAD"))
def badge(request: Any) -> Any:
    channel = readable_channel(request)
    kind = request.matchdict["kind"]
    if kind not in KINDS:
        raise _missing()
    records = list(request.services.catalog().packages(channel.name,
                                                       name=request.matchdict["name"]))
    if not records:
        raise _missing()
    label, text, color = message(request, channel, kind, records)
    response = Response(render(label, text, color), content_type="image/svg+xml",
                        charset="utf-8")
    response.md5_etag()
    scope = "public" if channel.privacy == "public" else "private"
    response.cache_control = f"{scope}, max-age={MAX_AGE}"
    response.conditional_response = True
    return response

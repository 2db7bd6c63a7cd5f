"""The badge route: ``/api/channels/<ch>/badges/<name>/<kind>.svg``.

The route's resource is its channel (``channel_factory``) and the view declares
``channel:read``. A badge is meant for public pages, so every refusal (no read right,
anonymous or not, a malformed or too strong ``?token=``, an absent channel, package or kind)
answers one and the same 404 "badge not found", never a 401 with ``WWW-Authenticate``. The
badge shows the newest version the channel serves: files a policy hides never count.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.view import exception_view_config, forbidden_view_config, view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.domain.reads import Package
from repoproxy.errors import CredentialsInvalid, NotFound
from repoproxy.models import Access
from repoproxy.plugins import collect
from repoproxy.web.request import Request
from repoproxy.web.resources import channel_factory
from repoproxy.web.routes import CHANNEL_PATH

from . import KINDS
from .render import render

MAX_AGE = 300


def includeme(config: Configurator) -> None:
    config.add_route("badges.badge", f"/api/channels/{CHANNEL_PATH}/badges/{{name}}/{{kind}}.svg",
                     factory=channel_factory)
    config.scan(".views")


def _missing() -> NotFound:
    # one body for every refusal: missing channel, package, kind, or no/too strong token
    return NotFound("badge not found")


@forbidden_view_config(route_name="badges.badge")
@exception_view_config(CredentialsInvalid, route_name="badges.badge")
def refused(exc: Exception, request: Request) -> Any:
    """No read right, or credentials that are no good: the core's own 404 of a missing badge
    (rendered by the core's error view, so the bytes are those of any missing badge)."""
    try:
        raise _missing()
    except NotFound:
        return request.invoke_exception_view()


def relative(ms: int, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    seconds = max(0, int(now.timestamp() - ms / 1000))
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def message(request: Request, package: Package, kind: str) -> tuple[str, str, str]:
    newest = package.newest
    if kind == "version":
        return "version", newest.version, "blue"
    if kind == "license":
        return "license", newest.record.get("license") or "unknown", "green"
    if kind == "platforms":
        return "platforms", " | ".join(package.platforms), "lightgrey"
    if kind == "downloads":
        total, known = 0, False
        for rec in package.records:
            for extra in collect(request.services.pm.hook.repoproxy_package_extra(
                    request=request, channel=package.channel, record=rec)):
                if "downloads" in extra:
                    known = True
                    total += int(extra["downloads"])
        return "downloads", str(total) if known else "n/a", "brightgreen"
    stamp = package.latest_release
    if kind == "latest_release_date":
        day = datetime.fromtimestamp(stamp / 1000, UTC).date().isoformat()
        return "latest release date", day, "orange"
    return "latest release", relative(stamp), "orange"


@view_config(route_name="badges.badge", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def badge(request: Request) -> Any:
    channel = request.context.channel
    # a badge URL is pasted into public pages: a ?token= there may only read
    if request.environ.get("repoproxy.query_token") is not None and \
            request.identity.access(channel.name) not in (None, Access.READ):
        raise _missing()
    kind = request.matchdict["kind"]
    if kind not in KINDS:
        raise _missing()
    try:
        package = request.reads.package(channel, request.matchdict["name"])
    except NotFound:
        raise _missing() from None
    label, text, color = message(request, package, kind)
    response = Response(render(label, text, color), content_type="image/svg+xml",
                        charset="utf-8")
    response.md5_etag()
    scope = "public" if channel.privacy == "public" else "private"
    response.cache_control = f"{scope}, max-age={MAX_AGE}"
    response.conditional_response = True
    return response

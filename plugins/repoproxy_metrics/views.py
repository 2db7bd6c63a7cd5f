"""``/-/metrics``: the Prometheus text exposition, for admins or (by default) loopback callers."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.settings import asbool

from repoproxy.errors import Forbidden
from repoproxy.web.resources import ServerResource

LOOPBACK = frozenset({"127.0.0.1", "::1"})


def includeme(config: Configurator) -> None:
    from . import metrics

    settings = config.registry.services.settings
    if not asbool(settings.get("repoproxy_metrics.enabled", True)):
        return
    config.registry.services.pm.hook.repoproxy_metrics_collectors(
        registry=metrics.extra_registry())
    config.add_route("metrics.scrape", "/-/metrics", factory=ServerResource)
    config.add_view(scrape, route_name="metrics.scrape", request_method="GET",
                    permission=NO_PERMISSION_REQUIRED)


def scrape(request: Any) -> Any:
    from prometheus_client import CONTENT_TYPE_LATEST

    from . import metrics

    settings = request.services.settings
    loopback = (asbool(settings.get("repoproxy_metrics.allow_loopback", True))
                and request.remote_addr in LOOPBACK)
    if not loopback and not request.identity.is_admin:
        raise Forbidden("metrics are readable by admins or from loopback only")
    body = metrics.exposition()
    response = Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


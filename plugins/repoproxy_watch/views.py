"""``GET /api/v1/watch``: the watch folder's status, for admins."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator

from repoproxy.domain.permissions import Permissions
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource

from .config import WatchConfig
from .state import status


def watch_status(request: Request) -> dict[str, Any]:
    services = request.services
    return status(services, WatchConfig.from_settings(services.settings))


def includeme(config: Configurator) -> None:
    config.add_route("watch.status", "/api/v1/watch", factory=ServerResource)
    config.add_view(watch_status, route_name="watch.status", request_method="GET",
                    renderer="json", permission=Permissions.SERVER_ADMIN)

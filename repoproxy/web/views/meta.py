"""Meta routes: /-/health, /-/plugins."""

from __future__ import annotations

from typing import Any

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy import __version__
from repoproxy.plugins import describe_plugins
from repoproxy.web.request import Request


@view_config(route_name="meta.health", renderer="json", permission=NO_PERMISSION_REQUIRED)
def health(request: Request) -> Any:
    request.services.catalog().ping()
    return {"status": "ok", "version": __version__}


@view_config(route_name="meta.plugins", renderer="json", permission=NO_PERMISSION_REQUIRED)
def plugins(request: Request) -> Any:
    return {"plugins": describe_plugins(request.services.pm)}

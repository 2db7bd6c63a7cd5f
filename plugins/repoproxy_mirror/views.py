"""Mirror API: ``/api/v1/mirrors...`` (admins only: a mirror's source may be an internal URL,
and a run fetches from it on the server's behalf). Thin: parse, call :mod:`.service`, render."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.web.bodies import bool_field, json_body, str_field
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource

from . import service


def includeme(config: Configurator) -> None:
    config.add_route("mirror.list", "/api/v1/mirrors", factory=ServerResource)
    config.add_route("mirror.item", "/api/v1/mirrors/{mirror}", factory=ServerResource)
    for action in ("stop", "restart", "run"):
        config.add_route(f"mirror.{action}", f"/api/v1/mirrors/{{mirror}}/{action}",
                         factory=ServerResource)
    config.scan("repoproxy_mirror.views")


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("name", "channel", "run_now")}


@view_config(route_name="mirror.list", request_method="GET", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def list_mirrors(request: Request) -> Any:
    channel = request.GET.get("channel") or None
    return {"mirrors": service.list_mirrors(request.services, channel)}


@view_config(route_name="mirror.list", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def create_mirror(request: Request) -> Any:
    body = json_body(request)
    name = str_field(body, "name", required=True)
    channel = str_field(body, "channel", required=True)
    run_now = bool_field(body, "run_now")
    request.response.status_int = 201
    return service.create(request.services, str(name), str(channel), _fields(body),
                          actor=request.identity, run_now=run_now)


@view_config(route_name="mirror.item", request_method="GET", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def show_mirror(request: Request) -> Any:
    return service.show(request.services, request.matchdict["mirror"],
                        request.GET.get("channel") or None)


@view_config(route_name="mirror.item", request_method="PATCH", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def update_mirror(request: Request) -> Any:
    body = json_body(request)
    channel = str_field(body, "channel", required=True)
    return service.update(request.services, request.matchdict["mirror"], str(channel),
                          _fields(body), actor=request.identity,
                          run_now=bool_field(body, "run_now"))


@view_config(route_name="mirror.item", request_method="DELETE", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def delete_mirror(request: Request) -> Any:
    channel = request.GET.get("channel")
    if not channel:
        from repoproxy.web.bodies import BadRequest

        raise BadRequest("the 'channel' query parameter is required")
    return service.delete(request.services, request.matchdict["mirror"], channel,
                          actor=request.identity)


@view_config(route_name="mirror.stop", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def stop_mirror(request: Request) -> Any:
    return service.stop(request.services, request.matchdict["mirror"], actor=request.identity)


@view_config(route_name="mirror.restart", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def restart_mirror(request: Request) -> Any:
    return service.restart(request.services, request.matchdict["mirror"],
                           actor=request.identity)


@view_config(route_name="mirror.run", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def run_mirror(request: Request) -> Any:
    return service.run_now(request.services, request.matchdict["mirror"],
                           actor=request.identity)

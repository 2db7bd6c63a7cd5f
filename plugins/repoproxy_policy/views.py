"""Policy API: ``/api/v1/policies...``. Changes need an admin; listing needs no rights, but a
policy shows only the channels the caller can read."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.web.bodies import MAX_TEXT, BadRequest, json_body, str_field
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource, channel_factory
from repoproxy.web.routes import CHANNEL_PATH

from . import ops
from .service import policy_store


def includeme(config: Configurator) -> None:
    config.add_route("policy.list", "/api/v1/policies", factory=ServerResource)
    config.add_route("policy.explain", f"/api/v1/policies/explain/{CHANNEL_PATH}/*filename",
                     factory=channel_factory)
    config.add_route("policy.item", "/api/v1/policies/{id}", factory=ServerResource)
    config.add_route("policy.assign", "/api/v1/policies/{id}/assign", factory=ServerResource)
    config.add_route("policy.unassign", "/api/v1/policies/{id}/unassign",
                     factory=ServerResource)
    config.scan("repoproxy_policy.views")


def _visible(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    if request.identity.is_admin:
        return data
    readable = {c.name for c in request.reads.channels()}
    return dict(data, channels=[c for c in data["channels"] if c in readable])


def _channel(request: Request) -> str:
    channel = str_field(json_body(request), "channel")
    if not channel:
        raise BadRequest("'channel' is required")
    return channel


def _policy_body(request: Request) -> dict[str, Any]:
    body = json_body(request)
    for key in ("name", "description", "channel_name", "channel-name"):
        str_field(body, key, max_len=MAX_TEXT)  # filters are checked by the policy model
    return body


# anyone may look: a policy names only the channels the caller may read
@view_config(route_name="policy.list", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def list_policies(request: Request) -> Any:
    return {"policies": [_visible(request, p.as_json())
                         for p in policy_store(request.services).list()]}


@view_config(route_name="policy.list", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def create_policy(request: Request) -> Any:
    request.response.status_int = 201
    return ops.create(request.services, _policy_body(request), actor=request.identity)


@view_config(route_name="policy.item", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def show_policy(request: Request) -> Any:
    return _visible(request, policy_store(request.services).get(request.matchdict["id"])
                    .as_json())


@view_config(route_name="policy.item", request_method="PATCH", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def edit_policy(request: Request) -> Any:
    return ops.edit(request.services, request.matchdict["id"], _policy_body(request),
                    actor=request.identity)


@view_config(route_name="policy.item", request_method="DELETE", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def delete_policy(request: Request) -> Any:
    return ops.delete(request.services, request.matchdict["id"], actor=request.identity)


@view_config(route_name="policy.assign", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def assign_policy(request: Request) -> Any:
    return ops.assign(request.services, request.matchdict["id"], _channel(request),
                      actor=request.identity)


@view_config(route_name="policy.unassign", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def unassign_policy(request: Request) -> Any:
    return ops.unassign(request.services, request.matchdict["id"], _channel(request),
                        actor=request.identity)


# hidden files are the channel managers' business: others learn nothing about them
@view_config(route_name="policy.explain", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def explain(request: Request) -> Any:
    channel = request.context.channel
    return ops.explain(request.services, channel.name, "/".join(request.matchdict["filename"]))

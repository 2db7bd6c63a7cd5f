"""JSON API of subchannels and of copy, move and remove.

``/api/v1/channels/<channel>/subchannels[/<sub>]`` lists, creates, shows and removes
subchannels (managing them needs ``channel:manage`` on the parent; reading follows the
parent). ``POST /api/v1/{copy,move,remove}/<channel>[/<sub>]`` act on the origin channel named
by the path: copy needs ``channel:read`` there, move and remove ``channel:delete``; copy and
move also need ``channel:upload`` on the destination named in the body, asked of the same
security policy (a destination the caller may not read answers like an absent one).
"""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from repoproxy.domain import channels, transfers
from repoproxy.domain.permissions import Permissions
from repoproxy.names import check_subchannel_name
from repoproxy.web.bodies import MAX_TEXT, json_body, str_field
from repoproxy.web.refusal import refusal
from repoproxy.web.request import Request
from repoproxy.web.resources import ChannelResource
from repoproxy.web.views.api import channel_details, channel_files


# --- subchannels ----------------------------------------------------------------------------
@view_config(route_name="api.subchannels", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def list_subchannels(request: Request) -> Any:
    parent = request.context.channel.name
    subs = channels.list_subchannels(request.services, parent)
    return {"channel": parent, "subchannels": [ch.as_json() for ch in subs]}


@view_config(route_name="api.subchannels", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def post_subchannel(request: Request) -> Any:
    body = json_body(request)
    sub = check_subchannel_name(str_field(body, "name", required=True) or "")
    channel = channels.create_subchannel(
        request.services, f"{request.context.channel.name}/{sub}",
        str_field(body, "description", max_len=MAX_TEXT) or "", actor=request.identity,
        privacy=str_field(body, "privacy"))
    request.response.status_int = 201
    return channel_details(request, channel)


@view_config(route_name="api.subchannel", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_subchannel(request: Request) -> Any:
    return channel_details(request, request.context.channel)


@view_config(route_name="api.subchannel", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def remove_subchannel(request: Request) -> Any:
    channel = channels.remove_channel(request.services, request.context.channel.name,
                                      actor=request.identity)
    return {"deleted": channel.name}


@view_config(route_name="api.subchannel_files", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def subchannel_files(request: Request) -> Any:
    return channel_files(request)


# --- copy, move, remove -----------------------------------------------------------------------
def _spec(request: Request, body: dict[str, Any]) -> transfers.Spec:
    return transfers.Spec.of(request.context.channel.name,
                             str_field(body, "package", required=True) or "",
                             str_field(body, "version"))


def _narrowing(body: dict[str, Any]) -> dict[str, Any]:
    return {"subdir": str_field(body, "subdir"), "filename": str_field(body, "file")}


def _destination(request: Request, body: dict[str, Any]) -> str:
    """The destination named in the body, once the caller may upload there."""
    name = str_field(body, "destination", required=True) or ""
    # the same in-memory snapshot as every route's channel (resources.channel_factory)
    resource = ChannelResource(request, request.services.channel_map().get(name), name)
    if not request.has_permission(Permissions.CHANNEL_UPLOAD, resource):
        raise refusal(request, resource, Permissions.CHANNEL_UPLOAD)
    return name


@view_config(route_name="api.copy", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_READ)
def copy_package(request: Request) -> Any:
    body = json_body(request)
    spec = _spec(request, body)
    result = transfers.copy_package(request.services, spec, _destination(request, body),
                                    actor=request.identity, visible=request.reads.visible,
                                    **_narrowing(body))
    return result.as_json()


@view_config(route_name="api.move", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def move_package(request: Request) -> Any:
    body = json_body(request)
    spec = _spec(request, body)
    result = transfers.move_package(request.services, spec, _destination(request, body),
                                    actor=request.identity, visible=request.reads.visible,
                                    **_narrowing(body))
    return result.as_json()


@view_config(route_name="api.remove", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def remove_package(request: Request) -> Any:
    body = json_body(request)
    result = transfers.remove_package(request.services, _spec(request, body),
                                      actor=request.identity, visible=request.reads.visible,
                                      **_narrowing(body))
    return result.as_json()

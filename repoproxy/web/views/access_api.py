"""Access API: channel privacy, members, tokens, whoami, audit log.

Each view declares its permission (on the channel or on the server) and calls one operation of
:mod:`repoproxy.domain`; the operation writes the audit row with its change.
"""

from __future__ import annotations

import json
from typing import Any

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain import channels, members, tokens
from repoproxy.domain.audit import audit_entries
from repoproxy.domain.permissions import Permissions
from repoproxy.models import Access
from repoproxy.web.bodies import (
    MAX_TEXT,
    BadRequest,
    bool_field,
    int_field,
    json_body,
    str_field,
    str_list_field,
)
from repoproxy.web.request import Request
from repoproxy.web.resources import ChannelResource


# --- privacy -----------------------------------------------------------------------------
@view_config(route_name="api.channel", request_method="PATCH", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def patch_channel(request: Request) -> Any:
    body = json_body(request)
    if "privacy" not in body and "description" not in body:
        raise BadRequest("nothing to change: give privacy and/or description")
    privacy = str_field(body, "privacy") if "privacy" in body else None
    description = (str_field(body, "description", max_len=MAX_TEXT)
                   if "description" in body else None)
    channel = channels.update_channel(
        request.services, request.context.channel.name, actor=request.identity,
        privacy=None if privacy is None else str(privacy),
        description=None if description is None else str(description))
    return channel.as_json()


# --- members -----------------------------------------------------------------------------
@view_config(route_name="api.members", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def list_members(request: Request) -> Any:
    name = request.context.channel.name
    return {"channel": name, "members": members.list_members(request.services, name)}


@view_config(route_name="api.members", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def add_member(request: Request) -> Any:
    name = request.context.channel.name
    body = json_body(request)
    user = str_field(body, "user") or ""
    role = str_field(body, "role") or "member"
    members.add_member(request.services, name, user, role, actor=request.identity)
    request.response.status_int = 201
    return {"channel": name, "user": user, "role": role}


@view_config(route_name="api.member", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def remove_member(request: Request) -> Any:
    name, user = request.context.channel.name, request.matchdict["user"]
    members.remove_member(request.services, name, user, actor=request.identity)
    return {"channel": name, "removed": user}


# --- tokens ------------------------------------------------------------------------------
def _channel_check(request: Request) -> tokens.ChannelCheck:
    """The security policy's answer for a channel named in a request body (plugins' ACL
    entries and the channel's privacy included), as the token rules need it."""
    catalog = request.services.catalog()

    def may(name: str, permission: str) -> bool:
        resource = ChannelResource(request, catalog.get_channel(name), name)
        return bool(request.has_permission(permission, resource))

    return may


@view_config(route_name="api.tokens", request_method="POST", renderer="json",
             permission=Permissions.SERVER_USE)
def post_token(request: Request) -> Any:
    body = json_body(request)
    chans = str_list_field(body, "channels", comma_string=True)
    owner = str_field(body, "user_id") or None
    days = (int_field(body, "expires_in_days", 1, tokens.MAX_TOKEN_DAYS)
            or int_field(body, "max_days", 1, tokens.MAX_TOKEN_DAYS))
    secret, row = tokens.create_token(
        request.services, actor=request.identity, name=str_field(body, "name") or "",
        admin=bool_field(body, "admin"), channels=chans,
        access=str_field(body, "permission") or "read", owner=owner, expires_in_days=days,
        may=_channel_check(request))
    request.response.status_int = 201
    return dict(row.as_json(), token=secret)


@view_config(route_name="api.tokens", request_method="GET", renderer="json",
             permission=Permissions.SERVER_USE)
def list_tokens(request: Request) -> Any:
    rows = tokens.visible_tokens(request.services, request.identity,
                                 channel=request.GET.get("channel") or None,
                                 owner=request.GET.get("user_id") or None)
    return {"tokens": [r.as_json() for r in rows]}


@view_config(route_name="api.token", request_method="PATCH", renderer="json",
             permission=Permissions.SERVER_USE)
def patch_token(request: Request) -> Any:
    body = json_body(request)
    if "permission" not in body and "name" not in body:
        raise BadRequest("nothing to change: give permission and/or name")
    permission = str_field(body, "permission") if "permission" in body else None
    name = str_field(body, "name") if "name" in body else None
    row = tokens.edit_token(request.services, request.matchdict["id"], permission,
                            name=None if name is None else str(name), actor=request.identity)
    return row.as_json()


@view_config(route_name="api.token", request_method="DELETE", renderer="json",
             permission=Permissions.SERVER_USE)
def delete_token(request: Request) -> Any:
    row = tokens.revoke_token(request.services, request.matchdict["id"],
                              actor=request.identity)
    return {"revoked": row.id}


# --- whoami and audit ----------------------------------------------------------------------
@view_config(route_name="api.whoami", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def whoami(request: Request) -> Any:
    # anonymous callers too learn who they are and what they may read
    ident = request.identity
    access = {ch.name: str(ident.access(ch.name) or Access.READ)
              for ch in request.reads.channels()}
    return {"name": ident.name, "kind": ident.kind, "role": ident.role,
            "channels": access, "token_id": ident.token_id, "token_expires": ident.expires}


@view_config(route_name="api.audit", request_method="GET", permission=Permissions.SERVER_ADMIN)
def audit_log(request: Request) -> Any:
    entries = audit_entries(request.services, request.GET.get("since"),
                            request.GET.get("channel"))
    body = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    return Response(body=body.encode(), content_type="application/x-ndjson", charset=None)

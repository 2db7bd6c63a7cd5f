"""Access API: channel privacy, members, tokens, whoami, audit log."""

from __future__ import annotations

from typing import Any

from pyramid.response import Response
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.domain.tokens import TokenRow, create_token
from repoproxy.errors import InvalidName, NotFound
from repoproxy.models import Access, Privacy
from repoproxy.storage.accounts import Accounts
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction
from repoproxy.web.access import (
    Forbidden,
    is_anonymous,
    readable_channels,
    require_admin,
    require_channel,
)
from repoproxy.web.views.api import BadRequest, json_body


def actor(request: Any) -> str:
    return str(request.identity.name)


def audit(request: Any, action: str, channel: str | None = None, target: str | None = None,
          **details: Any) -> None:
    db = request.services.db()
    with write_transaction(db):
        Accounts(db).audit(actor(request), action, channel, target, **details)


# --- privacy -----------------------------------------------------------------------------
@view_config(route_name="api.channel", request_method="PATCH", renderer="json")
def patch_channel(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["name"], Permissions.CHANNEL_MANAGE)
    body = json_body(request)
    fields: dict[str, Any] = {}
    if "privacy" in body:
        try:
            fields["privacy"] = Privacy(body["privacy"])
        except ValueError:
            raise InvalidName("privacy must be public, authenticated or private") from None
    if "description" in body:
        fields["description"] = str(body["description"])
    if not fields:
        raise BadRequest("nothing to change: give privacy and/or description")
    db = request.services.db()
    with write_transaction(db):
        Catalog(db).update_channel(channel.name, **fields)
        if "privacy" in fields and fields["privacy"] != channel.privacy:
            Accounts(db).audit(actor(request), "channel.privacy", channel.name, None,
                               old=str(channel.privacy), new=str(fields["privacy"]))
    return request.services.catalog().require_channel(channel.name).as_json()


# --- members -----------------------------------------------------------------------------
@view_config(route_name="api.members", request_method="GET", renderer="json")
def list_members(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["name"], Permissions.CHANNEL_MANAGE)
    return {"channel": channel.name,
            "members": Accounts(request.services.db()).members(channel.name)}


@view_config(route_name="api.members", request_method="POST", renderer="json")
def add_member(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["name"], Permissions.CHANNEL_MANAGE)
    body = json_body(request)
    user, role = str(body.get("user") or ""), str(body.get("role") or "member")
    db = request.services.db()
    with write_transaction(db):
        accounts = Accounts(db)
        accounts.add_member(channel.name, user, role)
        accounts.audit(actor(request), "member.add", channel.name, user, role=role)
    request.response.status_int = 201
    return {"channel": channel.name, "user": user, "role": role}


@view_config(route_name="api.member", request_method="DELETE", renderer="json")
def remove_member(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["name"], Permissions.CHANNEL_MANAGE)
    user = request.matchdict["user"]
    db = request.services.db()
    with write_transaction(db):
        accounts = Accounts(db)
        accounts.remove_member(channel.name, user)
        accounts.audit(actor(request), "member.remove", channel.name, user)
    return {"channel": channel.name, "removed": user}


# --- tokens ------------------------------------------------------------------------------
def _may_manage_token(request: Any, row: TokenRow) -> bool:
    ident = request.identity
    if ident.is_admin or (row.owner and row.owner == ident.name and not row.channels):
        return True
    return bool(row.channels) and all(
        (ident.access(ch) or Access.READ).rank >= Access.MANAGE.rank for ch in row.channels)


def _token_or_404(request: Any) -> TokenRow:
    row = request.services.catalog().get_token(request.matchdict["id"])
    token = TokenRow.from_row(row) if row else None
    if token is None or not _may_manage_token(request, token):
        raise NotFound("token not found")
    return token


@view_config(route_name="api.tokens", request_method="POST", renderer="json")
def post_token(request: Any) -> Any:
    ident = request.identity
    if is_anonymous(request):
        require_admin(request)  # raises the 401
    body = json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("'name' is required (a string)")
    name = name.strip()
    channels = body.get("channels") or []
    if isinstance(channels, str):
        channels = [c for c in channels.split(",") if c]
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise BadRequest("'channels' must be a list of channel names")
    try:
        access = Access(body.get("permission") or "read")
    except ValueError:
        raise BadRequest("permission must be read, write or manage") from None
    days = body.get("expires_in_days") or body.get("max_days")
    # at most a century: the expiry date must stay a date (a larger one was a 500)
    if days is not None and (not isinstance(days, int) or isinstance(days, bool)
                             or not 1 <= days <= 36500):
        raise BadRequest("expires_in_days must be an integer from 1 to 36500")
    if not isinstance(body.get("user_id") or "", str):
        raise BadRequest("'user_id' must be a user name")
    admin = bool(body.get("admin"))
    owner = body.get("user_id") or (None if channels or admin else ident.name)
    if admin or (owner and owner != ident.name):
        require_admin(request)
    for ch in channels:
        require_channel(request, ch, Permissions.CHANNEL_MANAGE)
    if not channels and not admin and ident.kind not in ("user", "token", "htpasswd"):
        raise Forbidden("only users may hold personal tokens")
    if not channels and not admin and (
            not owner or Accounts(request.services.db()).get_user(str(owner)) is None):
        raise BadRequest(f"user {owner!r} does not exist; give channels for a service token")
    db = request.services.db()
    with write_transaction(db):
        secret, row = create_token(Catalog(db), name=name, admin=admin, channels=channels,
                                   access=access, owner=owner, expires_in_days=days)
        Accounts(db).audit(actor(request), "token.create", ",".join(channels) or None, row.id,
                           name=name, permission=str(row.access), admin=admin)
    request.response.status_int = 201
    return dict(row.as_json(), token=secret)


@view_config(route_name="api.tokens", request_method="GET", renderer="json")
def list_tokens(request: Any) -> Any:
    if is_anonymous(request):
        require_admin(request)
    rows = [TokenRow.from_row(r) for r in request.services.catalog().list_tokens()]
    return {"tokens": [r.as_json() for r in rows if _may_manage_token(request, r)]}


@view_config(route_name="api.token", request_method="PATCH", renderer="json")
def patch_token(request: Any) -> Any:
    token = _token_or_404(request)
    body = json_body(request)
    try:
        access = Access(str(body.get("permission")))
    except ValueError:
        raise BadRequest("permission must be read, write or manage") from None
    db = request.services.db()
    with write_transaction(db):
        Catalog(db).update_token(token.id, access=str(access))
        Accounts(db).audit(actor(request), "token.edit", ",".join(token.channels) or None,
                           token.id, permission=str(access))
    return TokenRow.from_row(request.services.catalog().get_token(token.id) or {}).as_json()


@view_config(route_name="api.token", request_method="DELETE", renderer="json")
def delete_token(request: Any) -> Any:
    token = _token_or_404(request)
    db = request.services.db()
    with write_transaction(db):
        Catalog(db).update_token(token.id, revoked=1)
        Accounts(db).audit(actor(request), "token.revoke", ",".join(token.channels) or None,
                           token.id)
    return {"revoked": token.id}


# --- whoami and audit ----------------------------------------------------------------------
@view_config(route_name="api.whoami", request_method="GET", renderer="json")
def whoami(request: Any) -> Any:
    ident = request.identity
    channels = {ch.name: str(ident.access(ch.name) or Access.READ)
                for ch in readable_channels(request)}
    return {"name": ident.name, "kind": ident.kind, "role": ident.role,
            "channels": channels, "token_id": ident.token_id, "token_expires": ident.expires}


@view_config(route_name="api.audit", request_method="GET")
def audit_log(request: Any) -> Any:
    require_admin(request)
    entries = Accounts(request.services.db()).audit_entries(
        request.GET.get("since"), request.GET.get("channel"))
    import json

    body = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    return Response(body=body.encode(), content_type="application/x-ndjson", charset=None)

"""Channel access decisions in one place: 401 for anonymous, 404 for hidden, 403 for read-only.

A channel the caller may not read answers exactly like a channel that does not exist: same
status, body and headers, so that its existence does not leak. Anonymous callers get 401 with
``WWW-Authenticate`` both for channels that exist but are not public and for channels that do
not exist (otherwise 401-versus-404 would itself be an existence oracle).
"""

from __future__ import annotations

from typing import Any

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import NotFound, RepoproxyError
from repoproxy.models import Channel
from repoproxy.web.resources import ChannelResource


class AuthenticationRequired(RepoproxyError):
    status = 401
    code = "authentication-required"


class Forbidden(RepoproxyError):
    status = 403
    code = "forbidden"


def channel_not_found(name: str) -> NotFound:
    # the same words whatever the name: a hidden channel and an absent one answer alike
    return NotFound("channel not found")


def is_anonymous(request: Any) -> bool:
    return bool(request.identity.kind == "anonymous")


def require_channel(request: Any, name: str, permission: str = Permissions.CHANNEL_READ
                    ) -> Channel:
    """The channel if the caller holds ``permission`` on it, else the right refusal."""
    channel = request.services.catalog().get_channel(name)
    if channel is None:
        if is_anonymous(request):
            raise AuthenticationRequired("authentication required")
        raise channel_not_found(name)
    context = ChannelResource(request, channel)
    if not request.has_permission(Permissions.CHANNEL_READ, context):
        if is_anonymous(request):
            raise AuthenticationRequired("authentication required")
        raise channel_not_found(name)
    if permission != Permissions.CHANNEL_READ and not request.has_permission(permission, context):
        if is_anonymous(request):
            raise AuthenticationRequired("authentication required")
        raise Forbidden(f"you may not {permission.split(':')[1]} on channel {name!r}")
    return channel


def readable_channels(request: Any) -> list[Channel]:
    return [
        ch
        for ch in request.services.catalog().list_channels()
        if request.has_permission(Permissions.CHANNEL_READ, ChannelResource(request, ch))
    ]


def require_admin(request: Any) -> None:
    from repoproxy.web.resources import ServerResource

    if not request.has_permission(Permissions.SERVER_ADMIN, ServerResource(request)):
        if is_anonymous(request):
            raise AuthenticationRequired("authentication required")
        raise Forbidden("this needs an admin token")

"""Domain exceptions -> HTTP, in one place."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPForbidden, HTTPNotFound
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import CredentialsInvalid, RepoproxyError
from repoproxy.web.resources import ChannelResource


def error_response(request: Any, status: int, code: str, message: str,
                   reasons: list[str] | None = None) -> Any:
    response = request.response
    response.status_int = status
    response.content_type = "application/json"
    body: dict[str, Any] = {"error": code, "message": message}
    if reasons:
        body["reasons"] = reasons
    response.json_body = body
    response.cache_control = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="repoproxy", Basic realm="repoproxy"'
    return response


@exception_view_config(RepoproxyError)
def domain_error(exc: RepoproxyError, request: Any) -> Any:
    return error_response(request, exc.status, exc.code, exc.message, exc.reasons)


@exception_view_config(CredentialsInvalid)
def credentials_invalid(exc: CredentialsInvalid, request: Any) -> Any:
    # the message names what is wrong (unknown, expired, malformed) but never echoes the token
    return error_response(request, 401, "invalid-credentials", exc.message)


@notfound_view_config()
def not_found(exc: HTTPNotFound, request: Any) -> Any:
    return error_response(request, 404, "not-found", "not found")


@forbidden_view_config()
def forbidden(exc: HTTPForbidden, request: Any) -> Any:
    """A permission the security policy denied, answered without leaking existence.

    Anonymous callers are asked to authenticate (401), whether the channel exists or not. A
    channel the caller may not read answers exactly like an absent one (404). A channel the
    caller reads but may not change answers 403, naming the action.
    """
    if request.identity.kind == "anonymous":
        return error_response(request, 401, "authentication-required", "authentication required")
    context = request.context
    if isinstance(context, ChannelResource):
        if not context.exists or not request.has_permission(Permissions.CHANNEL_READ, context):
            return error_response(request, 404, "not-found", "channel not found")
        permission = str(getattr(exc.result, "permission", "") or Permissions.CHANNEL_READ)
        action = permission.split(":", 1)[-1]
        return error_response(request, 403, "forbidden",
                              f"you may not {action} on channel {context.channel.name!r}")
    return error_response(request, 403, "forbidden", "this needs an admin token")

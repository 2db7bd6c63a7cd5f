"""Domain exceptions -> HTTP, in one place."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPForbidden, HTTPNotFound
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from repoproxy.errors import CredentialsInvalid, RepoproxyError
from repoproxy.web.refusal import refusal


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
    response = error_response(request, exc.status, exc.code, exc.message, exc.reasons)
    if exc.retry_after is not None:  # 429 and 503 tell the client when to come back
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@exception_view_config(CredentialsInvalid)
def credentials_invalid(exc: CredentialsInvalid, request: Any) -> Any:
    # the message names what is wrong (unknown, expired, malformed) but never echoes the token
    return error_response(request, 401, "invalid-credentials", exc.message)


@notfound_view_config()
def not_found(exc: HTTPNotFound, request: Any) -> Any:
    return error_response(request, 404, "not-found", "not found")


@forbidden_view_config()
def forbidden(exc: HTTPForbidden, request: Any) -> Any:
    """A permission the security policy denied, answered without leaking existence."""
    permission = str(getattr(exc.result, "permission", "") or "")
    error = refusal(request, request.context, permission)
    return error_response(request, error.status, error.code, error.message)

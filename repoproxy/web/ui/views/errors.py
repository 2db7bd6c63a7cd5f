"""Errors of UI pages, as pages: the same status and words as the API's answers.

A channel the caller may not read answers the same 404 page as an absent one (the words come
from :func:`repoproxy.web.refusal.refusal`, as the API's do); an anonymous caller refused a
page is sent to the sign-in page instead.
"""

from __future__ import annotations

from typing import Any

from pyramid.csrf import get_csrf_token
from pyramid.exceptions import BadCSRFToken
from pyramid.httpexceptions import HTTPForbidden, HTTPNotFound, HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config

from repoproxy.errors import CredentialsInvalid, RepoproxyError
from repoproxy.web.refusal import AuthenticationRequired, refusal
from repoproxy.web.ui import renderer


def error_page(request: Any, status: int, message: str, reasons: list[str] | None = None,
               retry_after: int | None = None) -> Any:
    response = render_to_response(
        renderer("error.jinja2"),
        {"status": status, "message": message, "reasons": reasons or []}, request=request)
    response.status_int = status
    response.cache_control = "no-store"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@exception_view_config(RepoproxyError, ui_page=True)
def domain_error(exc: RepoproxyError, request: Any) -> Any:
    return error_page(request, exc.status, exc.message, exc.reasons, exc.retry_after)


@exception_view_config(CredentialsInvalid, ui_page=True)
def credentials_invalid(exc: CredentialsInvalid, request: Any) -> Any:
    return error_page(request, 401, exc.message)


@exception_view_config(BadCSRFToken, ui_page=True)
def bad_csrf(exc: BadCSRFToken, request: Any) -> Any:
    get_csrf_token(request)  # the next form gets a token
    return error_page(request, 400, "This form had expired or came from another site: "
                      "nothing was changed. Go back, reload the page and send it again.")


@notfound_view_config(ui_page=True)
def not_found(exc: HTTPNotFound, request: Any) -> Any:
    return error_page(request, 404, "not found")


@forbidden_view_config(ui_page=True)
def forbidden(exc: HTTPForbidden, request: Any) -> Any:
    permission = str(getattr(exc.result, "permission", "") or "")
    error = refusal(request, request.context, permission)
    if isinstance(error, AuthenticationRequired) and request.method in ("GET", "HEAD"):
        login = request.route_path("ui.login", _query={"next": request.path_qs})
        return HTTPSeeOther(location=login)
    return error_page(request, error.status, error.message)

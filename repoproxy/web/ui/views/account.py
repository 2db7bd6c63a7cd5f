"""Signing in and out, and one's personal tokens.

Signing in asks the same password backends as HTTP Basic (``repoproxy_identify``: local users,
htpasswd), so the same failed-login throttle (:mod:`repoproxy.domain.throttle`) bounds it;
every form checks the CSRF token (``require_csrf=True``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain import tokens
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import CredentialsInvalid, RepoproxyError
from repoproxy.models import Credentials
from repoproxy.web.request import Request
from repoproxy.web.ui import renderer
from repoproxy.web.ui.session import forget, remember

#: identity kinds a browser session may hold (tokens are for clients, not for signing in)
SESSION_KINDS = ("user", "htpasswd")


def safe_next(request: Request, value: Any) -> str:
    """Only a path of this UI: never an open redirect to another site."""
    text = str(value or "")
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not text.startswith("/ui/") or "\\" in text:
        return str(request.route_path("ui.home"))
    return text


@view_config(route_name="ui.login", request_method=("GET", "HEAD"),
             renderer=renderer("login.jinja2"), permission=NO_PERMISSION_REQUIRED)
def login_form(request: Request) -> dict[str, Any]:
    return {"next": safe_next(request, request.GET.get("next")), "error": "", "username": ""}


@view_config(route_name="ui.login", request_method="POST", require_csrf=True,
             renderer=renderer("login.jinja2"), permission=NO_PERMISSION_REQUIRED)
def login(request: Request) -> Any:
    username = str(request.POST.get("username", "")).strip()[:200]
    password = str(request.POST.get("password", ""))[:1024]
    next_url = safe_next(request, request.POST.get("next"))
    identity = None
    if username and password:
        try:
            identity = request.services.pm.hook.repoproxy_identify(
                request=request, credentials=Credentials(username=username, password=password,
                                                         source="form"))
        except CredentialsInvalid:
            identity = None
        # TooManyRequests / ServerBusy propagate: the error page says when to come back
    if identity is None or identity.kind not in SESSION_KINDS:
        request.response.status_int = 400
        return {"next": next_url, "error": "Wrong user name or password.", "username": username}
    remember(request, identity)
    return HTTPSeeOther(location=next_url)


@view_config(route_name="ui.logout", request_method="POST", require_csrf=True,
             permission=NO_PERMISSION_REQUIRED)
def logout(request: Request) -> Any:
    forget(request)
    return HTTPSeeOther(location=request.route_path("ui.home"))


# --- personal tokens --------------------------------------------------------------------------
def _token_rows(request: Request) -> list[tokens.TokenRow]:
    return [t for t in tokens.visible_tokens(request.services, request.identity)
            if not t.revoked]


@view_config(route_name="ui.tokens", request_method=("GET", "HEAD"),
             renderer=renderer("tokens.jinja2"), permission=Permissions.SERVER_USE)
def token_list(request: Request) -> dict[str, Any]:
    return {"tokens": _token_rows(request), "secret": None, "error": ""}


def _days(raw: Any) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= tokens.MAX_TOKEN_DAYS:
        raise RepoproxyError(f"expiry must be a number of days from 1 to {tokens.MAX_TOKEN_DAYS}")
    return int(text)


@view_config(route_name="ui.tokens", request_method="POST", require_csrf=True,
             renderer=renderer("tokens.jinja2"), permission=Permissions.SERVER_USE)
def token_create(request: Request) -> dict[str, Any]:
    try:
        secret, row = tokens.create_token(
            request.services, actor=request.identity,
            name=str(request.POST.get("name", ""))[:200],
            access=str(request.POST.get("permission", "read")),
            expires_in_days=_days(request.POST.get("expires_in_days")))
    except RepoproxyError as e:
        request.response.status_int = e.status
        return {"tokens": _token_rows(request), "secret": None, "error": e.message}
    # shown once, on this response only: never cached, never stored
    request.response.cache_control = "no-store"
    request.response.status_int = 201
    return {"tokens": _token_rows(request), "secret": secret, "created": row, "error": ""}


@view_config(route_name="ui.token_revoke", request_method="POST", require_csrf=True,
             permission=Permissions.SERVER_USE)
def token_revoke(request: Request) -> Any:
    row = tokens.revoke_token(request.services, request.matchdict["id"],
                              actor=request.identity)
    request.session.flash(f"Token {row.name!r} revoked.")
    back = (request.route_path("ui.channel", channel=row.channels[0])
            if row.channels and request.POST.get("back") == "channel"
            else request.route_path("ui.tokens"))
    return HTTPSeeOther(location=back)

"""Changing things from the pages: upload, members, service tokens, and the admin's users and
audit log. Each view checks the CSRF token, declares its permission and calls the one
operation of the application layer that the API calls too."""

from __future__ import annotations

from pathlib import PureWindowsPath
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config

from repoproxy.domain import members, packages, tokens, users
from repoproxy.domain.audit import audit_entries
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import RepoproxyError, TooLarge
from repoproxy.web.request import Request
from repoproxy.web.ui import renderer
from repoproxy.web.ui.views.account import _days
from repoproxy.web.views.access_api import _channel_check

AUDIT_ROWS = 500


def _wants_json(request: Request) -> bool:
    return "application/json" in str(request.headers.get("Accept", ""))


def _back(request: Request) -> Any:
    return HTTPSeeOther(location=request.route_path("ui.channel",
                                                    channel=request.context.channel.name))


# --- upload -------------------------------------------------------------------------------
@view_config(route_name="ui.upload", request_method="POST", require_csrf=True,
             permission=Permissions.CHANNEL_UPLOAD)
def upload(request: Request) -> Any:
    """Files of a form (``file`` fields): each through the API's upload operation, the server
    computing its sha256. The page's script sends one file per request and shows progress;
    without script the form posts them all and the channel page lists every outcome."""
    channel = request.context.channel
    limit = request.services.settings["repoproxy.max_upload_size"]
    results: list[dict[str, Any]] = []
    status = 201
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise TooLarge(f"upload of {request.content_length} bytes is over the limit of "
                       f"{limit} bytes")
    fields = [f for f in request.POST.getall("file") if hasattr(f, "file")]
    if not fields:
        status = 400
        results.append({"filename": "", "ok": False, "error": "choose a .conda or .tar.bz2 file",
                        "reasons": []})
    for field in fields:
        # some browsers send the whole client-side path: only its last part names the file
        filename = PureWindowsPath(str(field.filename or "")).name
        try:
            rec = packages.upload(request.services, channel, field.file.read, filename,
                                  actor=request.identity)
        except RepoproxyError as e:
            status = e.status if status == 201 else status
            results.append({"filename": filename, "ok": False, "error": e.message,
                            "reasons": list(e.reasons or [])})
        else:
            results.append({"filename": rec.filename, "ok": True, "subdir": rec.subdir,
                            "sha256": rec.sha256, "size": rec.size,
                            "url": request.route_path("ui.package", channel=channel.name,
                                                      name=rec.name)})
    if _wants_json(request):
        request.response.status_int = status
        request.response.json_body = {"results": results}
        request.response.content_type = "application/json"
        return request.response
    for r in results:
        request.session.flash(
            f"Uploaded {r['filename']} to {r['subdir']}." if r["ok"] else
            f"Refused {r['filename'] or 'the upload'}: {r['error']}"
            + "".join(f" {reason}" for reason in r["reasons"]),
            "ok" if r["ok"] else "error")
    return _back(request)


# --- members and service tokens ----------------------------------------------------------------
@view_config(route_name="ui.members", request_method="POST", require_csrf=True,
             permission=Permissions.CHANNEL_MANAGE)
def member_add(request: Request) -> Any:
    name = request.context.channel.name
    user = str(request.POST.get("user", "")).strip()[:200]
    role = str(request.POST.get("role", "member"))
    try:
        members.add_member(request.services, name, user, role, actor=request.identity)
        request.session.flash(f"{user} is now {role} of {name}.", "ok")
    except RepoproxyError as e:
        request.session.flash(f"Could not add {user or 'the member'}: {e.message}", "error")
    return _back(request)


@view_config(route_name="ui.member_remove", request_method="POST", require_csrf=True,
             permission=Permissions.CHANNEL_MANAGE)
def member_remove(request: Request) -> Any:
    name, user = request.context.channel.name, request.matchdict["user"]
    try:
        members.remove_member(request.services, name, user, actor=request.identity)
        request.session.flash(f"{user} removed from {name}.", "ok")
    except RepoproxyError as e:
        request.session.flash(f"Could not remove {user}: {e.message}", "error")
    return _back(request)


@view_config(route_name="ui.service_tokens", request_method=("GET", "HEAD"),
             renderer=renderer("service_tokens.jinja2"), permission=Permissions.CHANNEL_MANAGE)
def service_token_list(request: Request) -> dict[str, Any]:
    return _service_tokens(request, None, "")


def _service_tokens(request: Request, secret: str | None, error: str) -> dict[str, Any]:
    name = request.context.channel.name
    rows = [t for t in tokens.visible_tokens(request.services, request.identity)
            if name in t.channels and not t.revoked]
    return {"channel": request.context.channel, "tokens": rows, "secret": secret,
            "error": error}


@view_config(route_name="ui.service_tokens", request_method="POST", require_csrf=True,
             renderer=renderer("service_tokens.jinja2"), permission=Permissions.CHANNEL_MANAGE)
def service_token_create(request: Request) -> dict[str, Any]:
    try:
        secret, _ = tokens.create_token(
            request.services, actor=request.identity,
            name=str(request.POST.get("name", ""))[:200],
            channels=[request.context.channel.name],
            access=str(request.POST.get("permission", "read")),
            expires_in_days=_days(request.POST.get("expires_in_days")),
            may=_channel_check(request))
    except RepoproxyError as e:
        request.response.status_int = e.status
        return _service_tokens(request, None, e.message)
    request.response.cache_control = "no-store"
    request.response.status_int = 201
    return _service_tokens(request, secret, "")


# --- admin ----------------------------------------------------------------------------------
@view_config(route_name="ui.admin_users", request_method=("GET", "HEAD"),
             renderer=renderer("admin_users.jinja2"), permission=Permissions.SERVER_ADMIN)
def admin_users(request: Request) -> dict[str, Any]:
    return {"users": users.list_users(request.services)}


@view_config(route_name="ui.admin_users", request_method="POST", require_csrf=True,
             permission=Permissions.SERVER_ADMIN)
def admin_user_add(request: Request) -> Any:
    name = str(request.POST.get("name", "")).strip()[:200]
    try:
        users.add_user(request.services, name, str(request.POST.get("password", "")),
                       str(request.POST.get("role", "user")), actor=request.identity)
        request.session.flash(f"User {name} added.", "ok")
    except RepoproxyError as e:
        request.session.flash(f"Could not add {name or 'the user'}: {e.message}", "error")
    return HTTPSeeOther(location=request.route_path("ui.admin_users"))


@view_config(route_name="ui.admin_user_remove", request_method="POST", require_csrf=True,
             permission=Permissions.SERVER_ADMIN)
def admin_user_remove(request: Request) -> Any:
    name = request.matchdict["user"]
    try:
        users.remove_user(request.services, name, actor=request.identity)
        request.session.flash(f"User {name} removed.", "ok")
    except RepoproxyError as e:
        request.session.flash(f"Could not remove {name}: {e.message}", "error")
    return HTTPSeeOther(location=request.route_path("ui.admin_users"))


@view_config(route_name="ui.admin_audit", request_method=("GET", "HEAD"),
             renderer=renderer("admin_audit.jinja2"), permission=Permissions.SERVER_ADMIN)
def admin_audit(request: Request) -> dict[str, Any]:
    channel = str(request.GET.get("channel", "")).strip() or None
    entries = audit_entries(request.services, None, channel)
    return {"entries": list(reversed(entries))[:AUDIT_ROWS], "channel": channel or "",
            "total": len(entries)}

"""Refuse an upload as soon as its headers arrive, before the server reads its body.

waitress reads a whole request body (spooled to a temporary file, up to the size limit) before
the application sees the request, so without this an upload with no or bad credentials would
hold a connection and fill the temporary disk before being answered 401. The server
(``repoproxy.web.server``) calls :meth:`EarlyCheck.__call__` once a request's header block is
complete; a non-None answer is sent at once and the body is never read.

The decision is the application's own: the request is routed by the app's route mapper, and
the channel permission is checked by ``access.require_channel`` over the same security policy,
identity hook (``repoproxy_identify``) and ACLs, on a body-less Pyramid request built from the
headers. Only upload routes are checked, and only refusals are decided here (401, 403, 404
like the app would answer, 413 for an over-limit ``Content-Length``); everything else, and
every upload that passes, goes to the application as before, which checks it again.

The check runs on waitress's event-loop thread, so it must stay cheap: routing, one catalog
read and the identity hook (a token lookup; the token backend writes ``last_used`` at most
once a minute per token). A slow identity backend (password hashing for HTTP Basic) delays
other connections' I/O by its cost, once per upload.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pyramid.interfaces import IRoutesMapper
from pyramid.scripting import prepare

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import CredentialsInvalid, RepoproxyError
from repoproxy.web.proxies import ProxyHeaders
from repoproxy.web.refusal import refusal
from repoproxy.web.request import Request
from repoproxy.web.resources import channel_factory
from repoproxy.web.tweens import redacted_path, strip_path_token, undecodable_url

log = logging.getLogger("repoproxy.access")

#: (route name, method) of every upload endpoint (routes.py / views/uploads.py)
UPLOAD_ROUTES = frozenset({
    ("api.upload", "POST"),
    ("api.quetz_upload", "POST"),
    ("channel.file", "PUT"),
    ("artifacts.file", "POST"),
})

WWW_AUTHENTICATE = 'Bearer realm="repoproxy", Basic realm="repoproxy"'


@dataclass(frozen=True)
class EarlyResponse:
    """A refusal decided from the headers alone: status, JSON body, extra headers."""

    status: int
    code: str
    message: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def body(self) -> bytes:
        return json.dumps({"error": self.code, "message": self.message}).encode()


class EarlyCheck:
    """``check(method, path, query, headers)`` -> an :class:`EarlyResponse` or None."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.mapper = registry.queryUtility(IRoutesMapper)
        self.limit = int(registry.services.settings["repoproxy.max_upload_size"])
        self.log_requests = bool(registry.services.settings["repoproxy.log_requests"])
        # the client address (per-address login limit) as the application will see it
        self.proxy_headers = ProxyHeaders(registry.services.settings)

    def __call__(self, method: str, path: str, query: str,
                 headers: dict[str, str]) -> EarlyResponse | None:
        if method not in ("POST", "PUT"):
            return None
        start = time.perf_counter()
        environ = _environ(method, path, query, headers)
        if not self.proxy_headers.apply(environ) or undecodable_url(environ) is not None:
            return None  # the application answers these (400)
        request = Request(environ)  # the app's class: its properties (identity, services)
        env = prepare(request=request, registry=self.registry)
        try:
            strip_path_token(request)
            info = self.mapper(request) if self.mapper is not None else {}
            route = info.get("route")
            if route is None or (route.name, method) not in UPLOAD_ROUTES:
                return None
            request.matchdict, request.matched_route = info["match"], route
            answer = self._decide(request)
        except Exception:
            # never let the early check break a request: the application decides instead
            log.exception("early upload check failed; leaving the request to the application")
            return None
        finally:
            env["closer"]()
        if answer is not None:
            # what the logging tween leaves of a request the app answered: the observers'
            # call (metrics: requests, latency, auth failures by route) and the access line
            self.registry.access_recorder.observe(route.name, answer.status,
                                                  time.perf_counter() - start)
            if self.log_requests:
                log.info('%s "%s %s" %s early %s', environ.get("REMOTE_ADDR", "-"), method,
                         redacted_path(request), answer.status, answer.code)
        return answer

    def _decide(self, request: Any) -> EarlyResponse | None:
        # the route's own resource and the one security policy, as the upload views have them
        context = channel_factory(request)
        request.context = context
        try:
            if not request.has_permission(Permissions.CHANNEL_UPLOAD, context):
                raise refusal(request, context, Permissions.CHANNEL_UPLOAD)
        except CredentialsInvalid as e:
            return EarlyResponse(401, "invalid-credentials", e.message,
                                 [("WWW-Authenticate", WWW_AUTHENTICATE)])
        except RepoproxyError as e:
            extra = [("WWW-Authenticate", WWW_AUTHENTICATE)] if e.status == 401 else []
            return EarlyResponse(e.status, e.code, e.message, extra)
        length = request.content_length
        # the same slack as views/uploads.py: a multipart body carries a few headers more
        if length is not None and length > self.limit + 64 * 1024:
            return EarlyResponse(413, "too-large", f"upload of {length} bytes is over the "
                                 f"limit of {self.limit} bytes")
        return None


def _environ(method: str, path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    """A body-less WSGI environ shaped like waitress's (``headers`` are waitress's keys)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(),
        "wsgi.errors": BytesIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for key, value in headers.items():
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR"):
            environ[key] = value
        else:
            environ["HTTP_" + key] = value
    return environ

"""Cross-cutting request behaviour, outermost first: access log, URL decoding check, ``/t/``.

The access log wraps everything so that every answer, refusals included, is one line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from repoproxy.plugins import collect
from repoproxy.web.redact import redact

log = logging.getLogger("repoproxy.access")

#: the access log line: client, method, path, status, milliseconds, identity
ACCESS_LINE = '%s "%s %s" %s %.1fms %s'
TOKEN_PATH = re.compile(r"^/t/([^/]*)(/.*)?$")
SECRET_PARAMS = frozenset({"token", "access_token", "api_key"})


def token_path_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Strip ``/t/<token>/`` before routing; the token goes to the security policy only."""

    def tween(request: Any) -> Any:
        strip_path_token(request)
        return handler(request)

    return tween


def strip_path_token(request: Any) -> None:
    """Move a ``/t/<token>/`` prefix and a ``?token=`` value into the environ, for identify().

    Shared with the early upload check (``web/early.py``), so both see the same credentials.
    """
    match = TOKEN_PATH.match(request.path_info)
    if match:
        request.environ["repoproxy.path_token"] = match.group(1)
        request.path_info = match.group(2) or "/"
        request.environ["repoproxy.log_path"] = "/t/<redacted>" + request.path_info
    query = request.environ.get("QUERY_STRING")
    # parsing the query costs more than the rest of a 304: only when it may hold "token"
    if query and ("token" in query or "%" in query):
        query_token = request.GET.get("token")
        if query_token is not None:
            request.environ["repoproxy.query_token"] = query_token


def undecodable_url(environ: dict[str, Any]) -> str | None:
    """What is wrong with the request's path or query string as UTF-8, or None.

    webob decodes both strictly on first use (``request.path_info``, ``request.GET``) and
    raises ``UnicodeDecodeError`` from wherever that happens to be, which used to surface as
    a 500 with a traceback on every route.
    """
    path = environ.get("PATH_INFO", "")
    if not path.isascii():  # ASCII is UTF-8 (the common case, checked without a copy)
        try:
            path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return "the request path is not valid percent-encoded UTF-8"
    if not environ.get("QUERY_STRING"):
        return None
    try:
        parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True,
                  encoding="utf-8", errors="strict")
    except UnicodeError:
        return "the query string is not valid percent-encoded UTF-8"
    return None


def url_check_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Refuse (400, JSON) a path or query string that does not decode, before routing."""
    from repoproxy.web.views.errors import error_response

    def tween(request: Any) -> Any:
        problem = undecodable_url(request.environ)
        if problem is not None:
            return error_response(request, 400, "bad-request", problem)
        return handler(request)

    return tween


def _raw_path(request: Any) -> str:
    """The path as sent (re-quoted), for a log line; never raises on undecodable bytes."""
    try:
        return str(request.path_info)
    except UnicodeError:
        raw = request.environ.get("PATH_INFO", "").encode("latin-1", "replace")
        return quote(raw, safe="/:@!$&'()*+,;=-._~")


def redacted_path(request: Any) -> str:
    path = request.environ.get("repoproxy.log_path") or _raw_path(request)
    if request.query_string:
        pairs = [
            (k, "<redacted>" if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(request.query_string, keep_blank_values=True)
        ]
        path += "?" + urlencode(pairs, safe="<>")
    # a token in a place the tween does not strip (/T/<t>/, /<ch>/t/<t>/, /t/<a>/t/<t>/)
    return redact(str(path))


class AccessRecorder:
    """What every answered request leaves: the observers' call (``repoproxy_request_observers``:
    metrics) and the access log line. Shared by the logging tween and the server's lean path
    (web/lean.py), which answers some requests without the tweens."""

    def __init__(self, services: Any) -> None:
        self.log_requests = bool(services.settings["repoproxy.log_requests"])
        self.observers: list[tuple[str, Callable[[str, int, float], None]]] = []
        hook = services.pm.hook.repoproxy_request_observers
        for impl in reversed(hook.get_hookimpls()):  # pluggy's call order
            args = {"services": services} if "services" in impl.argnames else {}
            self.observers.extend((impl.plugin_name, observer)
                                  for observer in collect([impl.function(**args)]))

    def observe(self, route: str, status: int, seconds: float) -> None:
        for plugin, observer in self.observers:
            try:
                observer(route, status, seconds)
            except Exception:
                log.exception("plugin %s failed in repoproxy_request_observers", plugin)

    def logging(self) -> bool:
        """Whether a line is written (the caller then formats its path)."""
        return self.log_requests and log.isEnabledFor(logging.INFO)

    def line(self, client_addr: str | None, method: str, path: str, status: int,
             seconds: float, ident: str) -> None:
        """The access line (``path`` already redacted), when :meth:`logging` said so.

        The record is made and handled as ``log.info`` would, less the walk up the stack for
        the caller's file and line (a third of a line's cost, and always this line): records
        still pass the record factory (redaction), the logger's filters and its handlers."""
        log.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, ACCESS_LINE, (
            client_addr or "-", method, path, status, seconds * 1000, ident), None, "access"))


def logging_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """One line per request; never a token (path and query are redacted). The request
    observers (metrics) hear of every request here too."""
    recorder: AccessRecorder = registry.access_recorder

    def tween(request: Any) -> Any:
        start = time.perf_counter()
        status = 500
        try:
            response = handler(request)
            status = response.status_int
            return response
        finally:
            seconds = time.perf_counter() - start
            route = getattr(request, "matched_route", None)
            recorder.observe(route.name if route is not None else "none", status, seconds)
            if recorder.logging():
                recorder.line(request.client_addr, request.method, redacted_path(request),
                              status, seconds, request.environ.get("repoproxy.identity_name",
                                                                   "-"))

    return tween

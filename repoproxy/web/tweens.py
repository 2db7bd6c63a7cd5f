"""Cross-cutting request behaviour, in order: ``/t/<token>/`` stripping, then logging."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

log = logging.getLogger("repoproxy.access")

TOKEN_PATH = re.compile(r"^/t/([^/]*)(/.*)?$")
SECRET_PARAMS = frozenset({"token", "access_token", "api_key"})


def token_path_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """Strip ``/t/<token>/`` before routing; the token goes to the security policy only."""

    def tween(request: Any) -> Any:
        match = TOKEN_PATH.match(request.path_info)
        if match:
            request.environ["repoproxy.path_token"] = match.group(1)
            request.path_info = match.group(2) or "/"
            request.environ["repoproxy.log_path"] = "/t/<redacted>" + request.path_info
        query_token = request.GET.get("token")
        if query_token is not None:
            request.environ["repoproxy.query_token"] = query_token
        return handler(request)

    return tween


def redacted_path(request: Any) -> str:
    path = request.environ.get("repoproxy.log_path") or request.path_info
    if request.query_string:
        pairs = [
            (k, "<redacted>" if k.lower() in SECRET_PARAMS else v)
            for k, v in parse_qsl(request.query_string, keep_blank_values=True)
        ]
        path += "?" + urlencode(pairs, safe="<>")
    return str(path)


def logging_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """One line per request; never a token (path and query are redacted)."""
    enabled = registry.services.settings["repoproxy.log_requests"]

    def tween(request: Any) -> Any:
        start = time.perf_counter()
        status = 500
        try:
            response = handler(request)
            status = response.status_int
            return response
        finally:
            if enabled:
                ident = request.environ.get("repoproxy.identity_name", "-")
                log.info(
                    '%s "%s %s" %s %.1fms %s',
                    request.client_addr or "-",
                    request.method,
                    redacted_path(request),
                    status,
                    (time.perf_counter() - start) * 1000,
                    ident,
                )

    return tween

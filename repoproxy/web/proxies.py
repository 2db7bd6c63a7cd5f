"""Which peer may name the client: ``repoproxy.trusted_proxy`` and X-Forwarded-For.

Behind a reverse proxy every connection comes from the proxy. The client address matters
for the failed-login limit per address (domain/throttle.py), the access log and the metrics'
loopback rule, so it must be the real client's, and never one a client wrote itself: waitress
takes it from X-Forwarded-For only on a connection from the trusted proxy, and only from the
last ``repoproxy.trusted_proxy_count`` entries (the ones the trusted proxies appended); from
any other peer it drops the header. The early upload check (web/early.py) sees the headers
before the application does and applies the same rule through :func:`apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waitress.proxy_headers import proxy_headers_middleware

_PASSED = object()


def proxy_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """waitress's trusted-proxy adjustments (none when no proxy is trusted)."""
    trusted = settings["repoproxy.trusted_proxy"]
    if not trusted:
        return {}
    return {"trusted_proxy": trusted, "trusted_proxy_headers": {"x-forwarded-for"},
            "trusted_proxy_count": max(1, int(settings["repoproxy.trusted_proxy_count"]))}


class ProxyHeaders:
    """waitress's proxy-header rule on an environ that did not pass through waitress's app."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        options = proxy_options(settings)
        self._middleware = proxy_headers_middleware(
            lambda environ, start_response: _PASSED,
            trusted_proxy=options.get("trusted_proxy"),
            trusted_proxy_count=options.get("trusted_proxy_count", 1),
            trusted_proxy_headers=options.get("trusted_proxy_headers"),
            clear_untrusted=True)

    def apply(self, environ: dict[str, Any]) -> bool:
        """Rewrite ``environ`` in place; False for a malformed header from the trusted proxy
        (waitress answers those 400 itself)."""
        environ.setdefault("REMOTE_ADDR", "")  # no peer (tests): nobody's headers trusted
        return self._middleware(environ, lambda *args: None) is _PASSED

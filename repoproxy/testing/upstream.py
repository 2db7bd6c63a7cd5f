"""Upstreams for the mirror tests and benchmarks: a channel built by a real repoproxy core
(real packages, real repodata.json), served by a small loopback HTTP server that counts
requests and injects faults.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from repoproxy.testing.packages import PackageSpec, build_package

#: a fault: (handler, path) -> True if it answered the request itself
Fault = Callable[[BaseHTTPRequestHandler, str], bool]


class Upstream:
    """Serves ``directory`` (an upstream root's ``channels/``) at ``url``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits: Counter[str] = Counter()
        self.faults: dict[str, Fault] = {}
        self.headers_seen: list[dict[str, str]] = []
        self.paths_seen: list[str] = []
        self.delay = 0.0  # seconds every file answer waits (concurrency tests)
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                upstream.paths_seen.append(path)
                upstream.headers_seen.append(dict(self.headers))
                key = path.lstrip("/")
                for prefix in ("t/", ):
                    if key.startswith(prefix):  # /t/<token>/ form: strip it like conda servers
                        key = key.split("/", 2)[2]
                upstream.hits[key] += 1
                # requests on this connection so far, this one included (one handler object
                # per connection)
                self.on_connection = getattr(self, "on_connection", 0) + 1
                fault = upstream.faults.get(key) or upstream.faults.get("*")
                if fault is not None and fault(self, key):
                    return
                file = upstream.directory / key
                if not file.is_file():
                    self.send(404, b"not found")
                    return
                if upstream.delay:
                    time.sleep(upstream.delay)
                self.send(200, file.read_bytes())

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None
                     ) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Fault:
    def fault(h: Any, path: str) -> bool:
        h.send(code, body, headers)
        return True
    return fault


def truncated(directory: Path) -> Fault:
    """Announce the whole length, send half, close."""
    def fault(h: Any, path: str) -> bool:
        data = (directory / path).read_bytes()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        h.close_connection = True
        return True
    return fault


def slow(directory: Path, pause: float) -> Fault:
    def fault(h: Any, path: str) -> bool:
        data = (directory / path).read_bytes()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:10])
        h.wfile.flush()
        time.sleep(pause)
        with contextlib.suppress(OSError):
            h.wfile.write(data[10:])
        return True
    return fault


def drops_reused_connections() -> Fault:
    """Answer the first request of each connection; close the connection, unanswered, at the
    next one: an upstream closing an idle kept-alive connection just as a client reuses it
    (the client sees it open when it sends, then the end of the connection)."""
    def fault(h: Any, path: str) -> bool:
        if h.on_connection > 1:
            h.close_connection = True
            return True
        return False
    return fault


def redirect(location: str) -> Fault:
    def fault(h: Any, path: str) -> bool:
        h.send(302, b"", {"Location": location})
        return True
    return fault


def tampered(directory: Path) -> Fault:
    """Same length, one byte changed: only the sha256 can tell."""
    def fault(h: Any, path: str) -> bool:
        data = bytearray((directory / path).read_bytes())
        data[len(data) // 2] ^= 0xFF
        h.send(200, bytes(data))
        return True
    return fault


def build_upstream_root(root: Path, channel: str, specs: list[tuple[PackageSpec, str]],
                        pkgdir: Path) -> Any:
    """A repoproxy root holding ``channel`` with ``specs``; returns its core (close it)."""
    from repoproxy.domain.channels import create_channel
    from repoproxy.domain.core import load_core
    from repoproxy.domain.packages import upload_file

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    core = load_core({"repoproxy.root": str(root)}, env)
    create_channel(core, channel)
    for spec, fmt in specs:
        upload_file(core, channel, build_package(spec, pkgdir, fmt))
    return core


def add_package(core: Any, channel: str, spec: PackageSpec, pkgdir: Path,
                fmt: str = "conda") -> Path:
    from repoproxy.domain.packages import upload_file

    path = build_package(spec, pkgdir, fmt)
    upload_file(core, channel, path)
    return path

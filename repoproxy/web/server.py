"""Run the app under waitress with the plugins' background workers.

Hardening on top of waitress's defaults:

* the event loop uses ``poll()``, not ``select()`` (which dies with "filedescriptor out of
  range" as soon as a descriptor number passes 1023);
* the soft open-file limit is raised to the hard one (as systemd and docker set it up: a low
  soft limit under a high hard one), and the connection limit is sized to it, so the limit is
  reached before ``accept()`` fails for want of descriptors;
* connections that stay silent for ``repoproxy.idle_timeout`` seconds are closed;
* an upload is checked from its headers alone (``web/early.py``) and refused before its body
  is read.
"""

from __future__ import annotations

import functools
import http
import logging
import resource
import signal
from typing import Any

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.utilities import Error, RequestEntityTooLarge

from repoproxy.domain.core import Core
from repoproxy.plugins import collect
from repoproxy.web.early import EarlyCheck, EarlyResponse
from repoproxy.web.redact import install_redaction

log = logging.getLogger(__name__)

#: descriptors kept apart from connections: SQLite, logs, the wake-up pipe, plugins' files
FD_RESERVE = 64
#: most descriptors one connection holds: its socket, plus a spooled body or a file being sent
FDS_PER_CONNECTION = 2


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # an unlimited hard limit is not a valid soft one for files; 2**20 is Linux's nr_open default
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, e)
    return int(target if soft == resource.RLIM_INFINITY else soft)


def connection_limit(configured: int, fd_limit: int, threads: int) -> int:
    """The connection limit: ``configured`` (0 = automatic), at most what the fd limit allows."""
    fits = max(16, (fd_limit - FD_RESERVE - threads) // FDS_PER_CONNECTION)
    if configured == 0:
        return fits
    if configured > fits:
        log.warning("repoproxy.connection_limit %d is more than the open-file limit %d allows; "
                    "using %d", configured, fd_limit, fits)
        return fits
    return configured


class EarlyError(Error):
    """An early refusal in the shape waitress's ErrorTask sends: JSON like the app's errors."""

    def __init__(self, answer: EarlyResponse) -> None:
        super().__init__(answer.message)
        self.answer = answer
        self.code = answer.status
        self.reason = http.HTTPStatus(answer.status).phrase

    def to_response(self, ident: str | None = None) -> tuple[str, list[tuple[str, str]], bytes]:
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                   *self.answer.headers]
        return f"{self.code} {self.reason}", headers, self.answer.body()


class EarlyCheckParser(HTTPRequestParser):
    """waitress's parser, plus the early check the moment the header block is complete."""

    def __init__(self, adj: Any, check: EarlyCheck | None = None, addr: str = "-") -> None:
        super().__init__(adj)
        self._check = check
        self._addr = addr
        self._checked = False

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        if not self.headers_finished or self._checked or self._check is None:
            return consumed
        self._checked = True
        state: Any = self  # waitress is untyped: its attributes are set in parse_header
        if state.error is not None and not isinstance(state.error, RequestEntityTooLarge):
            return consumed  # a malformed request: waitress answers it
        headers = {**state.headers, "REMOTE_ADDR": self._addr}
        answer = self._check(state.command, state.path, state.query or "", headers)
        if answer is None:
            return consumed
        # answer now: no "100 Continue", no body read; waitress's ErrorTask sends this and
        # closes the connection, so what the client still sends is never parsed
        state.error = EarlyError(answer)
        state.completed = True
        state.expect_continue = False
        state.connection_close = True
        if state.body_rcv is not None:
            state.body_rcv.getbuf().close()
            state.body_rcv = None
        return len(data)  # the rest of this chunk is the refused body


class RepoproxyChannel(HTTPChannel):
    """waitress's channel with the early-check parser bound to its server's check."""

    early_check: EarlyCheck | None = None

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
        # the channel makes parsers as parser_class(adj), also for its own 500 answers
        self.parser_class = functools.partial(
            EarlyCheckParser, check=self.early_check,
            addr=str(addr[0]) if isinstance(addr, tuple) else "-")
        super().__init__(server, sock, addr, adj, map)


def serve(services: Core, app: Any, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop workers and exit cleanly."""
    from waitress.server import create_server

    settings = services.settings
    threads = settings["repoproxy.threads"]
    fd_limit = raise_fd_limit()
    limit = connection_limit(settings["repoproxy.connection_limit"], fd_limit, threads)
    idle = max(1, settings["repoproxy.idle_timeout"])
    server = create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        connection_limit=limit,
        backlog=2048,
        # select() cannot watch descriptors numbered 1024 or more; poll() can
        asyncore_use_poll=True,
        # waitress refuses larger bodies itself (413) before they reach the app
        max_request_body_size=settings["repoproxy.max_upload_size"] + 1024 * 1024,
        # a connection silent this long (and not waiting for its answer) is closed; the sweep
        # runs often enough that it happens within 1.5 times the timeout
        channel_timeout=idle,
        cleanup_interval=max(1, idle // 2),
        ident="repoproxy",
        clear_untrusted_proxy_headers=True,
    )
    # waitress takes no channel class argument; its accept handler reads this attribute
    server.channel_class = type("Channel", (RepoproxyChannel,),
                                {"early_check": EarlyCheck(app.registry)})
    install_redaction()  # waitress's logger and anything created since logging was set up
    log.info("open-file limit %d, connection limit %d, idle timeout %ds", fd_limit, limit, idle)
    workers = []
    for worker in collect(services.pm.hook.repoproxy_background_workers(services=services)):
        try:
            worker.start()
            workers.append(worker)
        except Exception:
            log.exception("background worker %r failed to start", worker)

    def _stop(signum: int, frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        # waitress's run() turns SystemExit into a shutdown of its worker threads; closing the
        # socket alone would leave the loop polling its wake-up pipe forever
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("serving on http://%s:%s", *server.getsockname()[:2])
    try:
        server.run()
    finally:
        server.close()
        for worker in reversed(workers):
            try:
                worker.stop()
            except Exception:
                log.exception("background worker %r failed to stop", worker)
        services.close()
    log.info("stopped")

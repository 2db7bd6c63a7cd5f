"""Run the app under waitress with the plugins' background workers.

Hardening on top of waitress's defaults:

* the event loop uses ``poll()``, not ``select()`` (which dies with "filedescriptor out of
  range" as soon as a descriptor number passes 1023);
* the soft open-file limit is raised to the hard one (as systemd and docker set it up: a low
  soft limit under a high hard one), and the connection limit is sized to it, so the limit is
  reached before ``accept()`` fails for want of descriptors;
* connections that stay silent for ``repoproxy.idle_timeout`` seconds are closed;
* an upload is checked from its headers alone (``web/early.py``) and refused before its body
  is read;
* connections stay open after a 304 (:class:`KeepAliveTask`);
* file bodies (``wsgi.file_wrapper``) go from the file to the socket by ``sendfile()``
  (:class:`SendfileBuffer`), not through Python in 16 KiB reads;
* a streamed body's chunks go straight to the socket while the client keeps up
  (:meth:`RepoproxyChannel.write_soon`), not through waitress's buffer and temporary file;
* waitress's "Task queue depth" warning is logged at most once a minute
  (:class:`QueueDepthLog`), not once per request queued under load.
"""

from __future__ import annotations

import errno
import functools
import http
import io
import logging
import os
import resource
import signal
import socket
import threading
import time
from typing import Any

from waitress.adjustments import Adjustments
from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask
from waitress.utilities import Error, RequestEntityTooLarge

from repoproxy.domain.core import Core
from repoproxy.errors import ConfigError
from repoproxy.plugins import collect
from repoproxy.web.early import EarlyCheck, EarlyResponse
from repoproxy.web.heap import HeapTrimmer, limit_arenas
from repoproxy.web.proxies import proxy_options
from repoproxy.web.redact import install_redaction

log = logging.getLogger(__name__)

#: descriptors kept apart from connections: SQLite, logs, the wake-up pipe, plugins' files
FD_RESERVE = 64
#: most descriptors one connection holds: its socket, plus a spooled body or a file being sent
FDS_PER_CONNECTION = 2
#: connections accepted per turn of the event loop at most
ACCEPT_BATCH = 64
#: the listen backlog
BACKLOG = 2048


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


class QueueDepthLog:
    """waitress's "Task queue depth is N" warning, at most once per ``interval`` seconds.

    waitress warns each time a request is queued while every thread is busy: under load,
    a formatted and redacted log line for every request, which cost a few percent of a
    small answer. Here the first one is logged, then at most one per interval, naming the
    deepest queue and how many warnings it stands for.
    """

    def __init__(self, interval: float = 60.0) -> None:
        self.logger = logging.getLogger("waitress.queue")
        self.interval = interval
        self._next = 0.0
        self._deepest = 0
        self._count = 0

    def warning(self, msg: str, depth: int, *args: Any) -> None:
        # called under the dispatcher's lock: no lock of its own needed
        self._deepest = max(self._deepest, depth)
        self._count += 1
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        self.logger.warning("Task queue depth is %d (deepest of %d warnings in the last "
                            "%.0f s: every thread was busy)", self._deepest, self._count,
                            self.interval)
        self._deepest = self._count = 0


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


#: most bytes one sendfile() call is asked for (the kernel sends what the socket buffer takes)
SENDFILE_CHUNK = 1 << 20
#: errors of a send meaning "the client went away" (waitress's own list)
_DISCONNECTED = frozenset({errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN,
                           errno.ECONNABORTED, errno.EPIPE, errno.EBADF})


class FileSlice:
    """Where the next bytes of a file body are: what :class:`SendfileBuffer` hands the
    channel instead of the bytes themselves."""

    __slots__ = ("count", "fd", "offset")

    def __init__(self, fd: int, offset: int, count: int) -> None:
        self.fd, self.offset, self.count = fd, offset, count

    def __len__(self) -> int:
        return self.count


class SendfileBuffer(ReadOnlyFileBasedBuffer):
    """``wsgi.file_wrapper`` whose bytes go from the file to the socket by ``sendfile()``.

    waitress sends a file body by reading a socket-buffer-sized chunk (16 KiB on Linux at
    accept) into Python, sending what the socket takes, and seeking back for the rest: a
    5 MB package is some 300 turns of that. Here the channel's send loop gets a
    :class:`FileSlice` and :meth:`RepoproxyChannel.send` hands it to the kernel, which copies
    nothing through Python; waitress's own bookkeeping (``skip`` after a send) is unchanged.
    A file without a descriptor (a BytesIO) is read as before.
    """

    def get(self, numbytes: int = -1, skip: bool = False) -> Any:
        try:
            fd = self.file.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = None
        if fd is None or skip:
            return super().get(numbytes, skip)
        state: Any = self  # waitress is untyped: remain is set in prepare()
        return FileSlice(fd, self.file.tell(), min(state.remain, SENDFILE_CHUNK))


class KeepAliveTask(WSGITask):
    """waitress's task, keeping HTTP/1.1 connections open after a 304 (or 204).

    waitress closes every HTTP/1.1 connection whose answer has no Content-Length, to frame an
    unframed body; but a 304 has no body by definition (RFC 9112 6.3: it ends at the header
    block), so closing after it only makes a revalidating client (conda's indexes, all day)
    pay a new TCP connection per request.
    """

    _framed_by_status = False

    def get_environment(self) -> Any:
        environ = super().get_environment()
        environ["wsgi.file_wrapper"] = SendfileBuffer
        return environ

    def build_response_header(self) -> bytes:
        state: Any = self  # waitress is untyped
        self._framed_by_status = (
            not state.has_body and state.version == "1.1" and not state.close_on_finish
            and state.request.headers.get("CONNECTION", "").lower() != "close")
        try:
            header: bytes = super().build_response_header()
            return header
        finally:
            self._framed_by_status = False

    def set_close_on_finish(self) -> None:
        if self._framed_by_status:
            return  # only waitress's "no Content-Length" rule asks for it here
        super().set_close_on_finish()


class RepoproxyChannel(HTTPChannel):
    """waitress's channel whose parsers run its server's early check, with
    :class:`KeepAliveTask`, sending :class:`FileSlice` chunks by ``sendfile()``."""

    task_class = KeepAliveTask

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
        # the channel makes parsers as parser_class(adj), also for its own 500 answers
        self.parser_class = functools.partial(
            EarlyCheckParser, check=getattr(server, "early_check", None),
            addr=str(addr[0]) if isinstance(addr, tuple) else "-")
        super().__init__(server, sock, addr, adj, map)

    def write_soon(self, data: Any) -> int:
        """waitress's, but what is written while nothing is pending goes straight to the socket.

        waitress appends every chunk of a streamed body (a generator ``app_iter``: a relayed
        mirror download, a JSON listing) to its output buffer, a BytesIO that becomes a
        temporary file past 1 MB, and sends it from there one SO_SNDBUF read (16 KiB) at a
        time. Here a chunk written when the buffer is empty is sent as it is, and only what
        the socket does not take at once is buffered: the bytes are copied once, not three
        times, and the output keeps its order (nothing is pending before the chunk).

        A file body (:class:`SendfileBuffer`) is sent the same way, by ``sendfile()`` under the
        channel's lock, before waitress's buffers see it. waitress (``send_bytes`` 1) flushes
        it from this thread as well, through its buffer list, and makes the same two system
        calls per answer (header, body; counted with strace); yet small file bodies (3 KB,
        like a shard or a shard index) measured 400-650/s, median latency 25-40 ms, in most
        runs of a bare app on this server (1,200-1,700/s in a few), and 2,000-2,300/s,
        median 7 ms, in every run (12 of 12) sent here; interleaved, 171-620/s against
        2,172-2,428/s. Why the buffer path falls into that slow mode (some 95 futex calls per
        request in either case: the GIL among waitress's threads) was not established, and
        bench/serve.py's shard-index and .zst rows (the repoproxy app, 16 connections)
        measured ~2,000/s before and after alike.
        """
        state: Any = self  # waitress is untyped
        if isinstance(data, SendfileBuffer):
            return self._send_file_soon(data)
        if type(data) is not bytes or state.total_outbufs_len or not state.connected:
            written: int = super().write_soon(data)
            return written
        size = len(data)
        with state.outbuf_lock:  # the event loop's flushes take it too
            if not state.total_outbufs_len and state.connected:
                try:
                    sent = self.send(data, do_close=False)
                except OSError:  # left to waitress's own flush below, which closes the channel
                    sent = 0
                if sent:
                    state.last_activity = time.time()
                    if sent == size:
                        return size
                    data = data[sent:]
        super().write_soon(data)
        return size

    def _send_file_soon(self, data: SendfileBuffer) -> int:
        """A file body: what the socket takes now is sent from this thread, the rest (or all
        of it, with output pending or no descriptor) goes to waitress's buffers as before,
        which send it and close the file."""
        state: Any = self  # waitress is untyped
        body: Any = data  # waitress's buffer is untyped too (``remain``, set by prepare())
        size = int(body.remain)
        with state.outbuf_lock:
            if not state.total_outbufs_len and state.connected:
                try:
                    while body.remain:
                        piece = body.get(SENDFILE_CHUNK)
                        if not isinstance(piece, FileSlice):
                            break  # no descriptor: waitress reads and sends it
                        sent = self.send(piece, do_close=False)
                        if not sent:
                            break  # the socket is full: the event loop sends the rest
                        body.skip(sent, True)
                        state.last_activity = time.time()
                except OSError:  # left to waitress's own flush, which closes the channel
                    pass
                if not body.remain:
                    body.close()  # as waitress closes a buffer it has sent
                    return size
        written: int = super().write_soon(body)
        return written

    def send(self, data: Any, do_close: bool = True) -> int:
        if not isinstance(data, FileSlice):
            sent: int = super().send(data, do_close)
            return sent
        try:
            return os.sendfile(self.socket.fileno(), data.fd, data.offset, data.count)
        except BlockingIOError:
            return 0
        except OSError as e:  # as waitress's send: a client gone closes the channel
            if e.errno in _DISCONNECTED:
                if do_close:
                    self.handle_close()
                return 0
            raise


class RepoproxyServer(TcpWSGIServer):
    """waitress's TCP server with the early-check channel and accepts in batches.

    waitress accepts one connection per turn of its loop, and each turn walks every open
    connection; under a burst of thousands of connections a real client then waits in the
    listen backlog for seconds. Accepting what is pending (up to a batch) per turn keeps the
    backlog short.
    """

    channel_class = RepoproxyChannel
    early_check: EarlyCheck | None = None
    accept_batch = ACCEPT_BATCH

    def handle_accept(self) -> None:
        for _ in range(self.accept_batch):
            before = len(self._map)
            super().handle_accept()
            # nothing pending (or a failed accept), or the connection limit reached
            if len(self._map) == before or len(self._map) >= self.adj.connection_limit:
                return


def make_server(app: Any, early_check: EarlyCheck | None, *,
                sockets: list[socket.socket] | None = None, accept_batch: int = ACCEPT_BATCH,
                **kw: Any) -> Any:
    """waitress's ``create_server`` for TCP listeners, with :class:`RepoproxyServer`.

    With ``sockets`` (bound and listening already, by the supervisor of several processes)
    the server accepts on those instead of binding ``host``/``port``.
    """
    adj = Adjustments(**kw)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.queue_logger = QueueDepthLog()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict[int, Any] = {}
    servers = []
    for sock in sockets or [None]:  # type: ignore[list-item]
        if sock is None:
            sockinfos = adj.listen
            extra: dict[str, Any] = {}
        else:
            sockinfos = [(sock.family, sock.type, sock.proto, sock.getsockname())]
            extra = {"bind_socket": False, "_sock": sock}
        for sockinfo in sockinfos:
            server = RepoproxyServer(app, socket_map, dispatcher=dispatcher, adj=adj,
                                     sockinfo=sockinfo, **extra)
            server.early_check = early_check
            server.accept_batch = accept_batch
            servers.append(server)
    if len(servers) == 1:
        return servers[0]
    listening = [(srv.effective_host, srv.effective_port) for srv in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher, servers[-1].log_info)


def server_options(settings: Any) -> dict[str, Any]:
    """waitress's adjustments from the settings (the listening address aside)."""
    threads = settings["repoproxy.threads"]
    fd_limit = raise_fd_limit()
    limit = connection_limit(settings["repoproxy.connection_limit"], fd_limit, threads)
    idle = max(1, settings["repoproxy.idle_timeout"])
    log.info("open-file limit %d, connection limit %d, idle timeout %ds", fd_limit, limit, idle)
    return {
        "threads": threads,
        "connection_limit": limit,
        "backlog": BACKLOG,
        # select() cannot watch descriptors numbered 1024 or more; poll() can
        "asyncore_use_poll": True,
        # waitress refuses larger bodies itself (413) before they reach the app
        "max_request_body_size": settings["repoproxy.max_upload_size"] + 1024 * 1024,
        # a connection silent this long (and not waiting for its answer) is closed; the sweep
        # runs often enough that it happens within 1.5 times the timeout
        "channel_timeout": idle,
        "cleanup_interval": max(1, idle // 2),
        "ident": "repoproxy",
        "clear_untrusted_proxy_headers": True,
        **proxy_options(settings),
    }



def listen_sockets(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on ``host:port`` (every address it resolves to), as waitress would;
    for a supervisor whose forked workers all accept on these sockets."""
    try:
        adj = Adjustments(host=host, port=port)
        out = []
        for family, socktype, proto, sockaddr in adj.listen:
            sock = socket.socket(family, socktype, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(BACKLOG)
            out.append(sock)
        return out
    except (OSError, ValueError) as e:  # address in use, unknown host: one line, no traceback
        raise ConfigError(f"cannot listen on {host}:{port}: "
                          f"{getattr(e, 'strerror', None) or e}") from None


def serve(services: Core, app: Any, host: str, port: int, workers: int = 1) -> None:
    """Serve until SIGTERM or SIGINT, then stop workers and exit cleanly.

    ``workers`` > 1: bind here, then fork that many serving processes and one that runs the
    background workers (``web/workers.py``).
    """
    # before any serving thread exists: the arenas they would make are what the cap saves
    limit_arenas(services.settings["repoproxy.malloc_arenas"])
    if workers > 1:
        from repoproxy.web.workers import Supervisor

        sockets = listen_sockets(host, port)
        Supervisor(services, app, sockets, workers).run()
        return
    try:
        server = make_server(app, EarlyCheck(app.registry), host=host, port=port,
                             **server_options(services.settings))
    except (OSError, ValueError) as e:  # address in use, unknown host: one line, no traceback
        raise ConfigError(f"cannot listen on {host}:{port}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
    run_server(services, server, background=True)


def run_server(services: Core, server: Any, *, background: bool) -> None:
    """Run a built server with the plugins' workers until SIGTERM or SIGINT.

    ``background``: also run ``repoproxy_background_workers`` (with ``--workers N`` a process
    of their own runs them instead, :func:`run_background`); ``repoproxy_process_workers``
    run in every serving process.
    """
    install_redaction()  # waitress's logger and anything created since logging was set up
    workers = _start_workers(services, background=background)

    def _stop(signum: int, frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        # waitress's run() turns SystemExit into a shutdown of its worker threads; closing the
        # socket alone would leave the loop polling its wake-up pipe forever
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for listen_host, listen_port in getattr(server, "effective_listen", None) or [
            server.getsockname()[:2]]:
        log.info("serving on http://%s:%s", listen_host, listen_port)
    try:
        server.run()
    finally:
        server.close()
        _stop_workers(workers)
        services.close()
    log.info("stopped")


def run_background(services: Core, stop: threading.Event) -> None:
    """The plugins' background workers in a process that serves nothing (so none of a serving
    process's per-process workers), until ``stop`` is set: with ``--workers N`` their work
    (SBOM builds, watch-folder imports, mirror runs) takes no serving process's GIL."""
    install_redaction()
    workers = _start_workers(services, background=True, process=False)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        _stop_workers(workers)
        services.close()


def _start_workers(services: Core, *, background: bool, process: bool = True) -> list[Any]:
    """Start the plugins' per-process workers (``process``: a serving process's) and/or the
    background ones."""
    hooks = services.pm.hook
    found = collect(hooks.repoproxy_process_workers(services=services)) if process else []
    if background:
        found += collect(hooks.repoproxy_background_workers(services=services))
    if HeapTrimmer.available():  # every process hands its freed heap back
        found.append(HeapTrimmer())
    if found:
        kinds = [k for k, on in (("background", background), ("process", process)) if on]
        log.info("starting %d %s workers", len(found), " and ".join(kinds))
    workers = []
    for worker in found:
        try:
            worker.start()
            workers.append(worker)
        except Exception:
            log.exception("background worker %r failed to start", worker)
    return workers


def _stop_workers(workers: list[Any]) -> None:
    for worker in reversed(workers):
        try:
            worker.stop()
        except Exception:
            log.exception("background worker %r failed to stop", worker)

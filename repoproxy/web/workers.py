"""``repoproxy serve --workers N``: N forked processes accepting on one listening socket.

Pre-fork: the supervisor (this process) has bound the sockets, recovered the root and built
the app; it then closes its catalog connections (an SQLite connection must not cross a fork)
and forks N serving processes that inherit the sockets and the loaded app. The kernel hands
each new connection to one of them. One more process, which serves nothing, runs the plugins'
background workers (watch folder, SBOM queue, mirrors): exactly one process does that work,
and its CPU-bound parts (an SBOM build holds the GIL for tens of milliseconds) never stall a
serving process's requests; a restarted one takes it over.

The supervisor serves nothing itself. It restarts a worker that dies (after a short pause if
it died young, so a worker that cannot start does not spin), and on SIGTERM or SIGINT it
passes SIGTERM to every worker, waits for them (SIGKILL after ``STOP_TIMEOUT``) and exits 0.
A worker whose supervisor is gone (SIGKILL) stops by itself within a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from repoproxy.domain.core import Core
from repoproxy.plugins import notify

log = logging.getLogger("repoproxy.web.workers")

#: seconds a stopping worker gets before SIGKILL
STOP_TIMEOUT = 20.0
#: a worker that dies younger than this is restarted after a pause of this long
MIN_LIFETIME = 1.0
#: how often the supervisor looks for dead workers (and a worker for a dead supervisor)
POLL = 0.2


class Supervisor:
    def __init__(self, services: Core, app: Any, sockets: list[socket.socket],
                 workers: int) -> None:
        self.services = services
        self.app = app
        self.sockets = sockets
        self.count = workers
        self.slots: dict[int, tuple[int, float]] = {}  # slot -> (pid, started)
        self.stopping = False

    def run(self) -> None:
        # no catalog connection crosses a fork: each worker opens its own
        self.services.close()

        def _stop(signum: int, frame: Any) -> None:
            log.info("signal %d: stopping %d workers", signum, len(self.slots))
            self.stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        for listen in self.sockets:
            host, port = listen.getsockname()[:2]
            log.info("serving on http://%s:%s with %d worker processes", host, port,
                     self.count)
        for slot in range(self.count + 1):  # the last one: the background workers
            self._start(slot)
        try:
            while not self.stopping:
                self._reap()
                time.sleep(POLL)
        finally:
            self._stop_all()
            for listen in self.sockets:
                listen.close()
        log.info("stopped")

    def _start(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                code = (_background(self.services, self.sockets) if slot == self.count
                        else _worker(self.services, self.app, self.sockets, slot, self.count))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 0
            except BaseException:
                log.exception("worker %d failed", slot)
            finally:
                logging.shutdown()
                os._exit(code)
        self.slots[slot] = (pid, time.monotonic())
        if slot == self.count:
            log.info("background process started (pid %d)", pid)
        else:
            log.info("worker %d started (pid %d)", slot, pid)

    def _reap(self) -> None:
        for slot, (pid, started) in list(self.slots.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if not done:
                continue
            del self.slots[slot]
            log.error("worker %d (pid %d) exited (%s); starting it again", slot, pid,
                      _describe(status))
            notify(self.services.pm, "repoproxy_worker_exited", services=self.services,
                   pid=pid)
            if time.monotonic() - started < MIN_LIFETIME:
                time.sleep(MIN_LIFETIME)
            if not self.stopping:
                self._start(slot)

    def _stop_all(self) -> None:
        for pid, _ in self.slots.values():
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.slots and time.monotonic() < deadline:
            for slot, (pid, _) in list(self.slots.items()):
                try:
                    done, _status = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    del self.slots[slot]
                    notify(self.services.pm, "repoproxy_worker_exited",
                           services=self.services, pid=pid)
            time.sleep(0.05)
        for pid, _ in self.slots.values():
            log.warning("worker pid %d did not stop in %.0fs: killed", pid, STOP_TIMEOUT)
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.slots.clear()


def _worker(services: Core, app: Any, sockets: list[socket.socket], slot: int,
            count: int) -> int:
    from repoproxy.web.early import EarlyCheck
    from repoproxy.web.server import make_server, run_server, server_options

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _follow_supervisor(os.getppid())
    # one connection per turn of the loop: the process that is least busy comes back to
    # accept soonest, so keep-alive connections spread over the workers
    server = make_server(app, EarlyCheck(app.registry), sockets=sockets, accept_batch=1,
                         **server_options(services.settings))
    run_server(services, server, background=False)
    return 0


def _background(services: Core, sockets: list[socket.socket]) -> int:
    """The process of the background workers: it accepts no connection."""
    from repoproxy.web.server import run_background

    for listen in sockets:
        listen.close()
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping the background workers", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _follow_supervisor(os.getppid())
    run_background(services, stop)
    return 0


def _follow_supervisor(parent: int) -> None:
    """Stop (as on SIGTERM) once the supervisor is gone: no orphan keeps serving."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL * 5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="repoproxy-follow-supervisor", daemon=True).start()


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"code {os.waitstatus_to_exitcode(status)}"

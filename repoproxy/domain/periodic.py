"""A background worker that does one thing every few seconds, for plugins' workers.

Workers returned by ``repoproxy_background_workers`` or ``repoproxy_process_workers`` need
``start()`` and ``stop()``; most of them are a thread that repeats one step (flush download
counts, build queued SBOMs, run due mirrors). This is that thread, once: a subclass gives the
step (``tick``) and, optionally, what to do last (``finish``).
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicWorker:
    """Calls :meth:`tick` every ``interval`` seconds in a daemon thread until :meth:`stop`.

    A failing tick is logged and retried at the next interval: a background step never ends
    its worker. ``immediately``: the first tick runs at start, not after one interval.
    Subclasses that loop inside a tick should check :attr:`stopping` between steps.
    """

    #: the thread's name (seen in py-spy and faulthandler dumps)
    name = "repoproxy-worker"
    #: how long stop() waits for a tick in progress
    join_timeout = 10.0

    def __init__(self, interval: float, *, immediately: bool = False) -> None:
        self.interval = interval
        self.immediately = immediately
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> object:
        raise NotImplementedError

    def finish(self) -> None:
        """Runs once in stop(), after the thread ended (e.g. a last flush)."""

    def start(self) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)
            self._thread = None
        self.finish()

    def _run(self) -> None:
        if self.immediately:
            self._tick()
        while not self.stopping.wait(self.interval):
            self._tick()

    def _tick(self) -> None:
        try:
            self.tick()
        except Exception:
            log.exception("%s: a background step failed; it runs again in %ss", self.name,
                          self.interval)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} every {self.interval}s>"

"""The background worker ``repoproxy serve`` runs: active mirrors' scheduled (cron) and
requested (``--run_now``) runs, and resumption of runs a crash interrupted.

One thread; runs happen one at a time. It polls the mirror table every
``repoproxy_mirror.poll_interval`` seconds (a run requested through the API waits at most that
long). ``stop()`` makes a run in progress end between two files, leaving it ``pending`` so the
next start resumes it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from repoproxy.domain.periodic import PeriodicWorker

from .model import Mirror

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

log = logging.getLogger(__name__)


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    try:
        value = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cron_due(mirror: Mirror, now: datetime) -> bool:
    """Whether the mirror's schedule has a tick between its last run (or creation) and now."""
    if not mirror.cron:
        return False
    from croniter import croniter

    base = _parse(mirror.last_run_at) or _parse(mirror.created) or now
    nxt = croniter(mirror.cron, base).get_next(datetime)
    return bool(nxt <= now)


def due(core: Core, mirror: Mirror, now: datetime) -> bool:
    from .active import is_running_elsewhere

    if mirror.mode != "active" or mirror.state in ("stopped", "stopping"):
        return False
    if mirror.state == "pending":
        return True
    if mirror.state == "running":
        return not is_running_elsewhere(core, mirror)  # a crashed run: resume it
    return cron_due(mirror, now)


class MirrorWorker(PeriodicWorker):
    name = "repoproxy-mirror"

    def __init__(self, core: Core) -> None:
        super().__init__(float(core.settings["repoproxy_mirror.poll_interval"]),
                         immediately=True)  # a run a crash interrupted resumes at start
        self.core = core
        self.deadline = float(core.settings["repoproxy_mirror.download_deadline"])
        self.swept_at: float | None = None

    def sweep(self) -> None:
        """At start, then once a deadline: what stopped first fetches left in the cache."""
        from .passive import sweep_partials

        now = time.monotonic()
        if self.swept_at is None or now - self.swept_at >= self.deadline:
            self.swept_at = now
            removed = sweep_partials(self.core, self.deadline)
            if removed:
                log.info("removed %d partial downloads left in the proxy cache", removed)

    def tick(self) -> list[str]:
        """Run every mirror that is due now; the names run."""
        from .active import run
        from .service import mirror_store

        self.sweep()
        ran = []
        for mirror in mirror_store(self.core).list():
            if self.stopping.is_set():
                break
            if due(self.core, mirror, datetime.now(UTC)):
                log.info("mirror %s: run starts", mirror.name)
                try:
                    run(self.core, mirror.name, shutdown=self.stopping)
                except Exception:
                    log.exception("mirror %s: run failed", mirror.name)
                ran.append(mirror.name)
        return ran

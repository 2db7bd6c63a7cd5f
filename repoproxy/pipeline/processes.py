"""Worker process pools whose workers end with the process that made them.

A ``ProcessPoolExecutor``'s workers wait on its call queue, a pipe whose write end every
worker holds too: when the process that made the pool dies without shutting it down (SIGKILL,
the OOM killer, a supervisor's kill after its stop timeout), they never see the queue end and
wait forever, and with the forkserver start method they keep the fork server alive as well.
Every SIGKILLed ``repoproxy serve`` whose watch folder had started its pool left three such
processes behind (a fork server and two workers), found after test runs on the project's
machine. Here each worker watches the pool's maker and exits when it is gone.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # multiprocessing loads with the first pool (recovery imports alive())
    import multiprocessing.context
    from concurrent.futures import ProcessPoolExecutor

#: seconds between two looks at the maker where a process descriptor cannot be had
POLL = 1.0


def worker_pool(workers: int,
                mp_context: multiprocessing.context.BaseContext | None = None,
                ) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that exit when this process does."""
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=mp_context,
                               initializer=exit_with, initargs=(os.getpid(),))


def exit_with(pid: int) -> None:
    """In a worker: end this process as soon as process ``pid`` has ended."""
    threading.Thread(target=_wait_then_exit, args=(pid,), name="exit-with-maker",
                     daemon=True).start()


def _wait_then_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)  # Linux 5.3+: readable once the process has ended
    except (AttributeError, OSError):  # elsewhere, or the maker is gone already
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while alive(pid):
            time.sleep(POLL)
    os._exit(1)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (perhaps another user's: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True

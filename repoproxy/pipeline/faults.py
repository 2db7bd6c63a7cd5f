"""Fault points: where a test may kill the process between two steps of a write.

``REPOPROXY_FAULT_AT=<step>`` makes the process SIGKILL itself when it reaches that step (no
clean-up, no ``finally``: what a power cut or an OOM kill leaves). Crash-safety tests set it
on a subprocess; production never does, and an unset variable costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "REPOPROXY_FAULT_AT"


def fault_point(step: str) -> None:
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)

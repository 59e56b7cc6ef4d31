"""Crash-test fault points: ``LGO_FAULT_POINT=<name>`` makes the process SIGKILL itself there.

Used by the crash tests to kill the daemon at each step of a dispensation or an outbox delivery.
Unset in production: a fault point is then a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

ENV = "LGO_FAULT_POINT"


def fault_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

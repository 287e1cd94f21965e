"""Named points in the service's work where a fault-injection test may kill the
process (OCCI_CRASH_AT=<point>), to prove that a restart leaves no orphan and
loses no record. Without the variable a checkpoint does nothing."""

from __future__ import annotations

import os
import signal

POINTS = ("create.provisioned", "write.committed", "action.performed", "delete.destroyed")


def checkpoint(point: str) -> None:
    if os.environ.get("OCCI_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)

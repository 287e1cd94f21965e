"""A GET of a compute whose hypervisor reports on it (libvirt) asks that
hypervisor for its state and counters as it answers. One that stops answering
(a frozen daemon, a host cut off) holds such a call until libvirt's keepalive
gives up and the connection's reopening reaches its deadline, in every worker
that has not yet found it silent: more than twenty seconds, and a client's
timeout before that on a busy machine. So the asking runs in a thread of its
own and a GET waits for it OBSERVE_SECONDS at most; then it answers with what
is stored, in state `error` saying why, unless the state came in time and
only the counters did not (the call ends on its own, later, and a later GET
shows the real state once the host answers). At most MOST_WAITING
of a process's calls wait at once; while they do, a GET does not ask (and
shows what is stored)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from occi_server.errors import BackendUnavailable
from occi_server.forks import forget_in_children
from occi_server.service.workers import JobThreads

OBSERVE_SECONDS = 5.0
MOST_WAITING = 16

T = TypeVar("T")


class Observations:
    def __init__(self, seconds: float = OBSERVE_SECONDS) -> None:
        self.seconds = seconds
        self._threads = JobThreads(name="occi-observe")
        self._forget()
        forget_in_children(self._forget)

    def _forget(self) -> None:
        """All the room free: a forked child has none of its parent's calls."""
        self._room = threading.BoundedSemaphore(MOST_WAITING)

    def within(self, ask: Callable[[], T]) -> T | None:
        """What `ask` returns (or raises), or None when it does not return
        within `seconds`; BackendUnavailable when MOST_WAITING calls wait already."""
        room = self._room
        if not room.acquire(blocking=False):
            raise BackendUnavailable(f"{MOST_WAITING} calls to hypervisors wait for an answer")
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                outcome["answer"] = ask()
            except Exception as exc:  # raised again in the asking thread
                outcome["error"] = exc
            finally:
                room.release()
                done.set()

        self._threads.run(run)
        if not done.wait(self.seconds):
            return None
        if "error" in outcome:
            raise outcome["error"]
        answer: T = outcome["answer"]
        return answer


OBSERVATIONS = Observations()

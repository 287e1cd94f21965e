"""The threads jobs (and a GET's questions to a hypervisor) run in: an idle
one takes the next job, another starts when none is idle (jobs never queue
behind a slow one: a guest booting, a volume copied, a hypervisor that does
not answer), and one idle for `idle_seconds` ends. A thread started per
job cost a create more than all its SQL (a new thread's first steps; 0.3 to
0.6 ms here against a hand-off to a waiting one)."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable

from occi_server.forks import forget_in_children

log = logging.getLogger("occi_server.jobs")


class JobThreads:
    def __init__(self, idle_seconds: float = 60.0, name: str = "occi-job") -> None:
        self.idle_seconds = idle_seconds
        self.name = name
        self._numbers = itertools.count(1)
        self._forget()
        forget_in_children(self._forget)

    def _forget(self) -> None:
        """No thread yet: a forked child has none of its parent's."""
        self._lock = threading.Lock()
        self._waiting: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0  # threads waiting for work, less the work handed to them

    def run(self, work: Callable[[], None]) -> None:
        """Run `work` in a thread of its own, now."""
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._waiting.put(work)
                return
        threading.Thread(target=self._serve, args=(work,),
                         name=f"{self.name}-{next(self._numbers)}", daemon=True).start()

    def _serve(self, work: Callable[[], None]) -> None:
        while True:
            try:
                work()
            except Exception:  # a job records its own failures: this is a defect of its own
                log.exception("a job ended by a defect")
            with self._lock:
                self._idle += 1
            while True:
                try:
                    work = self._waiting.get(timeout=self.idle_seconds)
                    break
                except queue.Empty:
                    with self._lock:
                        # Work handed to an idle thread is on its way: not all
                        # idle threads may go (some other one takes it).
                        if self._idle:
                            self._idle -= 1
                            return

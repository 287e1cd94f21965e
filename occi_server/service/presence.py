"""Which process holds a job, and whether it is still alive.

Every job is recorded with its holder, this process's id (host, pid and the
process's start time, made again after a fork: a pid used again by another
process is not taken for the old one). While a process has had jobs at work
for a third of `lease_seconds` it renews the lease `process:<id>`, every
third of `lease_seconds` (a short job writes nothing more). A job was
interrupted when its holder ran on this host and is gone, or when it has not
moved for `lease_seconds` and its holder's lease is missing or expired:
another front end (or this one, restarted) takes it over."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from occi_server.errors import OCCIError
from occi_server.store import Store

log = logging.getLogger("occi_server.presence")
_HOST = socket.gethostname()
_process: tuple[int, str] | None = None


def holder_id() -> str:
    """This process's id as a holder of jobs and leases."""
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:
        _process = (pid, f"{_HOST}:{pid}:{_started(pid) or uuid.uuid4().hex[:8]}")
    return _process[1]


def _started(pid: int) -> str | None:
    """When the process `pid` started (clock ticks since boot), or None if no
    live process has it (gone, or a zombie not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command, which may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


def lease_name(holder: str) -> str:
    return f"process:{holder}"


def is_gone(holder: str | None, leases: dict[str, tuple[str, datetime]], now: datetime,
            quiet_for: float, grace: float) -> bool:
    """Whether the process `holder` of a job untouched for `quiet_for` seconds
    has stopped: on this host its pid no longer runs; or, the job being older
    than `grace` (by then a live holder has renewed its lease), its lease is
    missing or expired."""
    if holder is None:  # a job from before holders were recorded
        return True
    host, _, rest = holder.partition(":")
    pid, _, started = rest.partition(":")
    if host == _HOST and holder != holder_id() and _started(int(pid or 0)) != started:
        return True  # that process is gone (or its pid is another's now)
    if quiet_for < grace:
        return False
    lease = leases.get(lease_name(holder))
    if lease is None:
        return True
    expires = lease[1] if lease[1].tzinfo else lease[1].replace(tzinfo=UTC)  # SQLite: UTC
    return expires < now


class Presence:
    """This process's liveness lease, renewed while it has jobs at work."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._working = 0
        self._since_renewal = False  # whether a job started since the renewer last woke
        self._thread: threading.Thread | None = None

    @contextmanager
    def working(self) -> Iterator[None]:
        """Around a job's work: the lease lives as long as some job runs. The
        renewing thread outlives the last job by up to a third of the lease, so
        that jobs in quick succession do not start one each."""
        with self._lock:
            self._working += 1
            self._since_renewal = True
            if self._thread is None or not self._thread.is_alive():  # none, or forked
                self._thread = threading.Thread(target=self._renew, name="occi-presence",
                                                daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._working -= 1

    def _renew(self) -> None:
        holder = holder_id()
        while True:
            time.sleep(self.lease_seconds / 3)
            with self._lock:
                if not self._working and not self._since_renewal:
                    self._thread = None
                    return
                self._since_renewal = False
                if not self._working:  # only short jobs meanwhile: they needed no lease
                    continue
            try:
                with self.store.transaction(write=True) as repo:
                    repo.hold_lease(lease_name(holder), holder, self.lease_seconds)
            except OCCIError as exc:  # the store is busy or away: try again soon
                log.warning("could not renew this process's lease: %s", exc.message)

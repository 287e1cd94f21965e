"""Writers of a SQLite store take turns on a lock file beside the database.

SQLite lets one writer in at a time and makes the others poll: its busy
handler sleeps between tries (1 ms, then 2, 5, 10 … up to 100 ms), so under a
steady load of writes from several worker processes a waiting writer sleeps
through many commits, and creates queue for hundreds of milliseconds. Here a
writer first waits for an exclusive `flock` on `<database>-writers.lock`
(threads of one process for a lock of their own first, since `flock` is held
per open file), which wakes it as soon as the one before it has committed;
SQLite's lock is then free. Readers never take it (WAL: they read a snapshot).
Held exactly as long as SQLite's write lock: never while the infrastructure
works."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("occi_server.store")


class WriterTurns:
    def __init__(self, database: Path | None) -> None:
        """`database`: the SQLite file (None: one in memory, one process's)."""
        self._path = database.with_name(database.name + "-writers.lock") if database else None
        self._holder: int | None = None  # the thread in its turn
        # This process's: (pid, lock of its threads, descriptor of the lock file).
        # What a forked child inherits is its parent's, perhaps held: it makes its own.
        self._process: tuple[int, threading.Lock, int | None] | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn; it ends when the block does."""
        _pid, threads, descriptor = self._own()
        if self._holder == threading.get_ident():
            # A write transaction inside another of the same thread: SQLite's
            # own lock decides, as it would without turns.
            yield
            return
        with threads:
            self._holder = threading.get_ident()
            try:
                if descriptor is None:
                    yield
                    return
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(descriptor, fcntl.LOCK_UN)
            finally:
                self._holder = None

    def _own(self) -> tuple[int, threading.Lock, int | None]:
        pid = os.getpid()
        if self._process is None or self._process[0] != pid:
            self._holder = None
            self._process = (pid, threading.Lock(), self._open())
        return self._process

    def _open(self) -> int | None:
        """A descriptor of the lock file of this process's own (one inherited
        across fork would share its lock with the parent and every sibling);
        read-only is enough to lock it, so any user who may read the database
        can take turns."""
        if self._path is None:
            return None
        try:
            return os.open(self._path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            log.warning("writers do not take turns (%s): SQLite's busy handler orders them",
                        exc)
            self._path = None
            return None

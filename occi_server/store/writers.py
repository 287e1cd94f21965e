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
works. Copying the write-ahead log back into the database (Checkpoints) is
done after a turn, and what others wrote meanwhile at the start of the next. How
long writers wait and hold their turns, and the CPU their threads use
meanwhile, is in the metrics (occi_store_write_turn_*)."""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from occi_server.forks import forget_in_children
from occi_server.metrics import WRITE_TURN_CPU, WRITE_TURN_HELD, WRITE_TURN_WAIT

log = logging.getLogger("occi_server.store")


class WriterTurns:
    def __init__(self, database: Path | None) -> None:
        """`database`: the SQLite file (None: one in memory, one process's)."""
        self._path = database.with_name(database.name + "-writers.lock") if database else None
        self._descriptor: int | None = None
        self._forget()
        forget_in_children(self._forget)

    def _forget(self) -> None:
        """Nothing held, nothing open: a forked child's turns are its own (a
        descriptor inherited across fork would share its lock with the parent
        and every sibling, and the parent's threads' lock may be held)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
        self._threads = threading.Lock()
        self._holder: int | None = None  # the thread in its turn
        self._descriptor = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this writer's turn; it ends when the block does."""
        if self._holder == threading.get_ident():
            # A write transaction inside another of the same thread: SQLite's
            # own lock decides, as it would without turns.
            yield
            return
        asked = time.perf_counter()
        began = ended = used = 0.0
        try:
            with self._threads:
                self._holder = threading.get_ident()
                try:
                    descriptor = self._lock_file()
                    if descriptor is None:
                        yield
                        return
                    fcntl.flock(descriptor, fcntl.LOCK_EX)
                    began, using = time.perf_counter(), time.thread_time()
                    try:
                        yield
                    finally:
                        # Read inside the turn: a clock read after it could come
                        # late (the process preempted) and overlap the next turn.
                        # The CPU clock's reads nest within the wall clock's, so
                        # the CPU counted never exceeds the time held.
                        used = time.thread_time() - using
                        ended = time.perf_counter()
                        fcntl.flock(descriptor, fcntl.LOCK_UN)
                finally:
                    self._holder = None
        finally:
            if ended:  # counted once the turn is over, so that no writer waits on it
                WRITE_TURN_WAIT.observe(began - asked)
                WRITE_TURN_HELD.observe(ended - began)
                WRITE_TURN_CPU.inc(used)

    def _lock_file(self) -> int | None:
        """This process's descriptor of the lock file, opened on first use;
        read-only is enough to lock it, so any user who may read the database
        can take turns. None: there is none (a database in memory, or a
        directory that cannot hold it)."""
        if self._descriptor is None and self._path is not None:
            try:
                self._descriptor = os.open(self._path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC,
                                           0o644)
            except OSError as exc:
                log.warning("writers do not take turns (%s): SQLite's busy handler orders "
                            "them", exc)
                self._path = None  # said once
        return self._descriptor


class Checkpoints:
    """SQLite copies its write-ahead log back into the database (a checkpoint)
    and starts the log over from its beginning only once every frame is copied
    and no reader still reads one. Its automatic checkpoints are off (see
    Store): they ran inside the commit that filled the log past 1 000 pages,
    and every writer queued behind it waited. Instead, once in EVERY of this
    process's write transactions, the writer runs a passive checkpoint (which
    waits for no one) after its turn, while others write; it copies most of
    the log, but never the frames the writers after it add meanwhile, so on
    its own, under a steady load of writes, the log never started over: it
    grew by about 130 KB a create, each write extending the file (435 MB
    after 10 s of creates). This process's next writer therefore finishes it
    at the start of its turn, before its transaction: with no other writer
    adding frames, the few left are copied, and that writer starts the log
    over. Copying all of it there held the turn for 6.6 ms (a median, with
    100 writes to copy), and every writer waited."""

    EVERY = 100

    def __init__(self) -> None:
        self._writes = itertools.count(1)
        self._to_finish = False

    def turn_began(self, connection: Connection) -> None:
        """A write transaction of this process is about to begin on
        `connection`, in its turn."""
        if self._to_finish:
            self._to_finish = False
            self._checkpoint(connection)

    def turn_ended(self, connection: Connection) -> None:
        """A write transaction of this process has ended on `connection` (its
        turn is over)."""
        if next(self._writes) % self.EVERY == 0:
            self._checkpoint(connection)
            self._to_finish = True

    @staticmethod
    def _checkpoint(connection: Connection) -> None:
        driver: Any = connection.connection.dbapi_connection
        try:
            driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the writes stand; the next checkpoint copies them
            log.warning("write-ahead log not checkpointed: %s", exc)

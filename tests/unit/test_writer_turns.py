"""Writers of a SQLite store take turns on a lock file beside the database,
across threads and processes (store/writers.py)."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from pathlib import Path

import pytest
from sqlalchemy import Connection

from occi_server.core import Entity
from occi_server.store import Store
from occi_server.store.writers import Checkpoints, WriterTurns
from tests.conftest import COMPUTE


def compute(entity_id: str) -> Entity:
    return Entity(id=entity_id, kind=COMPUTE, location=f"/compute/{entity_id}",
                  attributes={"occi.core.id": entity_id})


def waited_for(turn: AbstractContextManager[None], in_a_child: Callable[[], None]) -> bool:
    """Whether `in_a_child`, run in a child forked while this process holds
    `turn` for half a second, ended only after the turn did."""
    forked = multiprocessing.get_context("fork")
    done = forked.Value("d", 0.0)

    def run() -> None:
        in_a_child()
        done.value = time.monotonic()

    with turn:
        child = forked.Process(target=run)
        child.start()
        time.sleep(0.5)
        ended = time.monotonic()
    child.join(30)
    assert child.exitcode == 0
    return done.value >= ended


def test_a_writer_of_another_process_waits_for_the_turn_to_end(tmp_path: Path) -> None:
    database = tmp_path / "s.sqlite3"
    store = Store(f"sqlite:///{database}")
    store.migrate()
    with store.transaction(write=True) as repo:
        repo.insert(compute("c1"))
    assert (tmp_path / "s.sqlite3-writers.lock").exists()

    def write() -> None:
        with store.transaction(write=True) as repo:
            repo.insert(compute("c2"))

    # No SQLite lock is held meanwhile, only the turn.
    assert waited_for(WriterTurns(database).turn(), write)
    with store.transaction(write=False) as repo:
        assert repo.get("c2") is not None
    store.dispose()


def test_a_forked_child_takes_turns_of_its_own(tmp_path: Path) -> None:
    """Forked while its parent is in its turn (its threads' lock held, its lock
    file's descriptor locked), a child waits for that turn to end."""
    turns = WriterTurns(tmp_path / "s.sqlite3")

    def take_a_turn() -> None:
        with turns.turn():
            pass

    assert waited_for(turns.turn(), take_a_turn)


def test_threads_of_one_process_take_turns_too(tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "s.sqlite3")
    order: list[str] = []

    def second() -> None:
        with turns.turn():
            order.append("second")

    with turns.turn():
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.2)
        order.append("first ends")
    other.join(10)
    assert order == ["first ends", "second"]


def test_a_write_inside_another_of_the_same_thread_does_not_wait_for_itself(
        tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "s.sqlite3")
    done = threading.Event()

    def nested() -> None:
        with turns.turn(), turns.turn():
            done.set()

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    assert done.wait(5)


def test_without_a_lock_file_writers_still_write(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    turns = WriterTurns(tmp_path / "missing" / "s.sqlite3")  # its directory cannot hold one
    with caplog.at_level(logging.WARNING), turns.turn():
        pass
    assert "writers do not take turns" in caplog.text
    with turns.turn():  # said once
        pass
    assert caplog.text.count("writers do not take turns") == 1


def in_the_database_file(database: Path) -> set[str]:
    """The entity ids the database file itself holds (not its write-ahead log)."""
    with closing(sqlite3.connect(f"file:{database}?immutable=1", uri=True)) as raw:
        return {entity_id for (entity_id,) in raw.execute("SELECT id FROM entities")}


def test_the_log_is_copied_into_the_database_after_a_writers_turn_and_finished_in_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Checkpoints, "EVERY", 3)
    database = tmp_path / "s.sqlite3"
    store = Store(f"sqlite:///{database}")
    store.migrate()
    with closing(sqlite3.connect(database)) as raw:  # the schema into the file
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    turn_held: list[bool] = []
    checkpoint = Checkpoints._checkpoint

    def copied(connection: Connection) -> None:
        # Whether another writer, of any process, could add to the log meanwhile.
        descriptor = os.open(f"{database}-writers.lock", os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            turn_held.append(False)
        except BlockingIOError:
            turn_held.append(True)
        finally:
            os.close(descriptor)
        checkpoint(connection)

    monkeypatch.setattr(Checkpoints, "_checkpoint", staticmethod(copied))
    written = []
    for number in range(7):
        with store.transaction(write=True) as repo:
            repo.insert(compute(f"c{number}"))
        written.append(f"c{number}")
        # Not copied by SQLite inside a commit: after every third write transaction.
        assert in_the_database_file(database) == set(written[:len(written) // 3 * 3])
    # After the third and sixth turns, then finished in the fourth and seventh.
    assert turn_held == [False, True, False, True]
    store.dispose()


def test_the_log_starts_over_while_writers_keep_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four threads writing without a pause: the log is still copied back and
    started over from its beginning, so its file stays the size of the writes
    between two checkpoints instead of growing with every write."""
    monkeypatch.setattr(Checkpoints, "EVERY", 10)
    database = tmp_path / "s.sqlite3"
    store = Store(f"sqlite:///{database}")
    store.migrate()

    def write(thread: int) -> None:
        for number in range(150):
            with store.transaction(write=True) as repo:
                repo.insert(compute(f"c{thread}-{number}"))

    writers = [threading.Thread(target=write, args=(thread,)) for thread in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    with store.transaction(write=False) as repo:
        assert repo.count() == 600
    # About 0.5 MB between two checkpoints; 32 MB had the log kept every write.
    assert Path(f"{database}-wal").stat().st_size < 4_000_000
    store.dispose()

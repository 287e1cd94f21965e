"""A process's liveness lease: renewed while it has a job at work, by one
thread that outlives a burst of short jobs (service/presence.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.service.presence import Presence, holder_id, lease_name
from occi_server.store import Store

LEASE = 0.3  # seconds: the renewer wakes every 0.1 s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite3")
    store.migrate()
    yield store
    store.dispose()


def renewers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "occi-presence"]


def lease(store: Store) -> tuple[str, object] | None:
    with store.transaction(write=False) as repo:
        return repo.leases("process:").get(lease_name(holder_id()))


def wait_for(condition, seconds: float = 5) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_job_longer_than_a_third_of_the_lease_keeps_it(store: Store) -> None:
    presence = Presence(store, LEASE)
    with presence.working():
        time.sleep(LEASE)
        held = lease(store)
    assert held is not None and held[0] == holder_id()


def test_short_jobs_write_no_lease_and_share_one_renewer(store: Store) -> None:
    assert wait_for(lambda: not renewers())  # of an earlier test
    presence = Presence(store, LEASE)
    seen: list[threading.Thread] = []  # held, so that no two have the same id
    for _ in range(20):
        with presence.working():
            seen += renewers()
        time.sleep(0.01)  # jobs come and go, never a third of the lease apart
    assert len({id(thread) for thread in seen}) == 1  # not one thread per job
    assert lease(store) is None
    assert wait_for(lambda: not renewers())  # it ends once no job came for a third of the lease


def test_a_job_after_the_renewer_ended_starts_another(store: Store) -> None:
    presence = Presence(store, LEASE)
    with presence.working():
        pass
    assert wait_for(lambda: not renewers())
    with presence.working():
        assert len(renewers()) == 1
        time.sleep(LEASE)
    assert lease(store) is not None

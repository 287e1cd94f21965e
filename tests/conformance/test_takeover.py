"""Jobs outlive the front end that ran them: each job names the process at
work on it, a process with jobs at work keeps a lease in the store, and the
jobs of one that stopped (lease expired, or on this host its pid gone) are
taken over: a create is finished where it can be, other entities get their
real state back and their jobs end failed.
Two real front ends on one PostgreSQL: tests/integration/test_front_ends.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import update

from occi_server.service import Reconciler
from occi_server.service.presence import holder_id, lease_name
from occi_server.store import Store
from occi_server.store.tables import entities, jobs, leases
from tests.conftest import Client

ELSEWHERE = "another-host:4242:0badcafe"


def test_leases_are_held_renewed_and_taken_once_expired(database_url: str) -> None:
    store = Store(database_url)
    store.migrate()
    with store.transaction(write=True) as repo:
        assert repo.hold_lease("reconciler", "a", 30)
        assert not repo.hold_lease("reconciler", "b", 30)
        assert repo.hold_lease("reconciler", "a", 30)  # renewed
    with store.engine.begin() as connection:
        connection.execute(update(leases).values(expires=datetime.now(UTC) - timedelta(1)))
    with store.transaction(write=True) as repo:
        assert repo.hold_lease("reconciler", "b", 30)  # a let it expire
        assert repo.leases()["reconciler"][0] == "b"
        repo.release_lease("reconciler", "a")  # not a's any more: nothing happens
        assert repo.leases()["reconciler"][0] == "b"
        repo.release_lease("reconciler", "b")
        assert repo.leases() == {}
    store.dispose()


def interrupted(app: Flask, path: str, holder: str, age: float = 60) -> str:
    """Make `path`'s finished create look like one still at work in `holder`."""
    store = app.extensions["occi.store"]
    with store.transaction(write=True) as repo:
        entity = repo.by_location(path)
        assert entity is not None
        [job] = [j for j in repo.jobs() if j["entity_id"] == entity.id]
    with store.engine.begin() as connection:
        connection.execute(update(entities).where(entities.c.id == entity.id).values(
            attributes={**entity.attributes, "occi.compute.state": "waiting"}))
        connection.execute(update(jobs).where(jobs.c.id == job["id"]).values(
            state="running", holder=holder,
            updated=datetime.now(UTC) - timedelta(seconds=age)))
    return job["id"]


def job_state(client: Client, job_id: str) -> str:
    return client.get(f"/jobs/{job_id}").get_json()["state"]


def test_the_jobs_of_a_front_end_that_stopped_are_taken_over(make_app) -> None:
    app = make_app(lease_seconds=5, reconcile_seconds=0)
    client = Client(app)
    lost, expired, alive, young, gone_here, reused = (client.compute() for _ in range(6))
    lost_job = interrupted(app, lost, ELSEWHERE)  # never took a lease
    expired_job = interrupted(app, expired, "fifth-host:1:0000beef")
    alive_job = interrupted(app, alive, "third-host:1:feedf00d")
    young_job = interrupted(app, young, "fourth-host:1:00000000", age=1)  # not renewed yet
    here_job = interrupted(app, gone_here, f"{holder_id().split(':')[0]}:999999999:12345",
                           age=1)  # its pid is gone: no need to wait
    reused_job = interrupted(app, reused, f"{holder_id().split(':')[0]}:1:0",
                             age=1)  # pid 1 runs, but it is not the process that started then
    store = app.extensions["occi.store"]
    with store.transaction(write=True) as repo:
        for holder in ("third-host:1:feedf00d", "fifth-host:1:0000beef"):
            assert repo.hold_lease(lease_name(holder), holder, 60)
    with store.engine.begin() as connection:
        connection.execute(update(leases).where(
            leases.c.name == lease_name("fifth-host:1:0000beef")).values(
            expires=datetime.now(UTC) - timedelta(seconds=1)))

    taken = Reconciler(app.extensions["occi.service"], 1).run_once()
    assert taken == 4
    for path, job in ((lost, lost_job), (expired, expired_job), (gone_here, here_job),
                      (reused, reused_job)):
        # the simulated hypervisor cannot say what became of it: error, and why
        shown = client.attributes(path)
        assert shown["occi.compute.state"] == "error"
        assert "front end doing it stopped" in shown["occi.compute.state.message"]
        assert job_state(client, job) == "failed"
    for path, job in ((alive, alive_job), (young, young_job)):
        assert client.attributes(path)["occi.compute.state"] == "waiting"
        assert job_state(client, job) == "running"


def test_a_job_records_the_process_at_work_on_it(client: Client) -> None:
    client.compute()
    with client.app.extensions["occi.store"].transaction(write=False) as repo:
        [job] = repo.jobs()
    assert job["holder"] == holder_id() and job["state"] == "done"


def test_a_long_job_keeps_its_process_alive(make_app) -> None:
    app = make_app(simulated_delay_seconds=3, job_wait_seconds=0.1, lease_seconds=1.5,
                   reconcile_seconds=0)
    client = Client(app)
    path = client.compute()
    time.sleep(2)  # older than the grace: only its renewed lease says it lives
    with app.extensions["occi.store"].transaction(write=False) as repo:
        assert lease_name(holder_id()) in repo.leases("process:")
    assert app.extensions["occi.service"].take_over_jobs() == []
    deadline = time.monotonic() + 10
    while client.attributes(path)["occi.compute.state"] == "waiting":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.attributes(path)["occi.compute.state"] == "active"


def test_the_reconciler_never_overwrites_what_a_request_changed_meanwhile(
        make_app, monkeypatch) -> None:
    app = make_app(reconcile_seconds=0)
    client = Client(app)
    path = client.compute()
    service = app.extensions["occi.service"]
    compute = service.backends.compute
    asked: list[str] = []

    def stale_answer(entity):
        """The hypervisor is asked while a user's stop goes through: what it said
        before the stop comes back after it."""
        if asked:
            return None
        asked.append(entity.location)
        stop = 'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/' \
               'action#"; class="action"'
        assert client.post_text(f"{path}?action=stop", [stop]).status_code == 200
        return {"occi.compute.state": "error", "occi.compute.state.message": "stale"}

    monkeypatch.setattr(compute, "observes", True)
    monkeypatch.setattr(compute, "current_state", stale_answer)
    assert Reconciler(service, 1).run_once() == 0
    assert asked == [path]
    assert client.attributes(path)["occi.compute.state"] == "inactive"  # the user's stop stands

"""A GET of a compute whose hypervisor does not answer is answered within a
bound, in state `error` saying why; nothing is stored, the other guests show
their real state, and the guest's shows again once its host answers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from occi_server.core import Entity
from occi_server.service.observation import MOST_WAITING, OBSERVATIONS
from tests.conftest import Client, stored_entity


@pytest.fixture
def frozen(app, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[set[str], threading.Event]]:
    """A hypervisor whose calls about the computes at these locations hang
    until the event is set; the others answer `inactive` at once."""
    locations: set[str] = set()
    thawed = threading.Event()
    backend = app.extensions["occi.service"].backends.compute

    def current_state(entity: Entity) -> dict[str, Any]:
        if entity.location in locations:
            thawed.wait(30)
        return {"occi.compute.state": "inactive", "occi.compute.state.message": "shut off"}

    monkeypatch.setattr(backend, "observes", True)
    monkeypatch.setattr(backend, "current_state", current_state)
    monkeypatch.setattr(backend, "stats", lambda _entity: {"occi_server.monitoring.cpu_seconds": 1})
    monkeypatch.setattr(OBSERVATIONS, "seconds", 0.3)
    yield locations, thawed
    thawed.set()


def test_a_get_waits_for_a_silent_hypervisor_a_bounded_time(
        app, client: Client, frozen: tuple[set[str], threading.Event]) -> None:
    locations, thawed = frozen
    silent, answering = client.compute(), client.compute()
    stored = stored_entity(app, silent).attributes["occi.compute.state"]
    locations.add(silent)

    started = time.monotonic()
    shown = client.attributes(silent)
    assert time.monotonic() - started < 10  # the call itself hangs for 30 s
    assert shown["occi.compute.state"] == "error"
    assert shown["occi.compute.state.message"] == (
        "its hypervisor does not answer within 0.3 s; the guest is kept and shows its real "
        "state again once it does")
    assert "occi_server.monitoring.cpu_seconds" not in shown
    assert client.attributes(answering)["occi.compute.state"] == "inactive"
    assert stored_entity(app, silent).attributes["occi.compute.state"] == stored

    thawed.set()
    locations.clear()
    shown = client.attributes(silent)
    assert shown["occi.compute.state"] == "inactive"
    assert shown["occi_server.monitoring.cpu_seconds"] == 1


def test_while_many_calls_wait_a_get_shows_what_is_stored(
        app, client: Client, frozen: tuple[set[str], threading.Event]) -> None:
    locations, thawed = frozen
    silent = [client.compute() for _ in range(MOST_WAITING)]
    answering = client.compute()
    locations.update(silent)
    for path in silent:
        assert client.attributes(path)["occi.compute.state"] == "error"
    # Each of those calls still hangs: the next GET does not ask, and shows the stored state.
    stored = stored_entity(app, answering).attributes["occi.compute.state"]
    shown = client.attributes(answering)
    assert shown["occi.compute.state"] == stored != "inactive"
    assert "occi_server.monitoring.cpu_seconds" not in shown

    thawed.set()
    deadline = time.monotonic() + 10  # the hanging calls end and make room
    while client.attributes(answering)["occi.compute.state"] != "inactive":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_state_that_came_in_time_is_shown_without_the_counters_that_did_not(
        app, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = app.extensions["occi.service"].backends.compute
    thawed = threading.Event()

    def stats(_entity: Entity) -> dict[str, Any]:
        thawed.wait(30)  # e.g. another job holds the guest
        return {"occi_server.monitoring.cpu_seconds": 1}

    monkeypatch.setattr(backend, "observes", True)
    monkeypatch.setattr(backend, "current_state", lambda _entity: {
        "occi.compute.state": "inactive", "occi.compute.state.message": "shut off"})
    monkeypatch.setattr(backend, "stats", stats)
    monkeypatch.setattr(OBSERVATIONS, "seconds", 0.3)
    compute = client.compute()
    try:
        shown = client.attributes(compute)
    finally:
        thawed.set()
    assert (shown["occi.compute.state"], shown["occi.compute.state.message"]) == (
        "inactive", "shut off")
    assert "occi_server.monitoring.cpu_seconds" not in shown

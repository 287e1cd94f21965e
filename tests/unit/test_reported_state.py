"""What of the infrastructure's report on a compute is shown over what is stored."""

from __future__ import annotations

from occi_server.core import Entity
from occi_server.service.jobs import reported

COMPUTE = "http://schemas.ogf.org/occi/infrastructure#compute"
STATE, MESSAGE = "occi.compute.state", "occi.compute.state.message"
FORCED = "shut off (TCG) (did not shut down within 15 s; powered off)"


def stored(state: str, message: str) -> Entity:
    return Entity("1", COMPUTE, "/compute/1", attributes={STATE: state, MESSAGE: message})


def test_what_an_action_noted_stays_while_the_guest_stays_as_it_left_it() -> None:
    shown = reported(stored("inactive", FORCED), {STATE: "inactive", MESSAGE: "shut off (TCG)"})
    assert shown == {STATE: "inactive", MESSAGE: FORCED}


def test_a_guest_that_changed_since_shows_its_state_alone() -> None:
    real = {STATE: "active", MESSAGE: "running (TCG)"}
    assert reported(stored("inactive", FORCED), real) == real
    other = {STATE: "inactive", MESSAGE: "crashed (TCG)"}
    assert reported(stored("inactive", FORCED), other) == other


def test_an_entity_in_error_keeps_why_it_failed() -> None:
    failed = stored("error", "start failed: no such image")
    assert reported(failed, {STATE: "error", MESSAGE: "domain not found"}) == {}

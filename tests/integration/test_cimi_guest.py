"""One real guest (libvirt + QEMU, the tiny test image) through both
protocols: created, stopped, started, suspended and deleted by CIMI or by
OCCI, each view checked against the other and against the hypervisor after
every step."""

from __future__ import annotations

import time

import libvirt
import pytest

from tests.conformance.test_cimi import CIMI, cimi, occi_path, ok
from tests.conftest import Client
from tests.integration import test_libvirt
from tests.integration.test_libvirt import console_until, domain_of, state
from tests.support.libvirt import unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")


client = test_libvirt.client  # the same site of real guests, removed after each test


def act(client: Client, machine: str, action: str, **extra: object) -> dict:
    job = ok(cimi(client, "POST", machine, {"resourceURI": CIMI + "Action",
                                            "action": CIMI + "action/" + action, **extra}))
    assert job["state"] == "SUCCESS", job
    return job


def test_a_real_guest_through_cimi_and_occi(client: Client) -> None:
    response = cimi(client, "POST", "machines", {
        "resourceURI": CIMI + "MachineCreate", "name": "real",
        "machineTemplate": {"machineConfig": {"cpu": 1, "memory": 256 * 1024},
                            "machineImage": {"href": "machineImage/tiny"},
                            "credential": {"publicKey": "ssh-ed25519 AAAAC3Nza cimi@test"}}})
    machine = ok(response, 201)
    path = occi_path(machine["id"])
    assert machine["state"] == "STARTED" and state(client, path) == "active"
    console = console_until(client, path, "occi-tiny: ready")
    assert 'occi-tiny: meta-data:   - "ssh-ed25519 AAAAC3Nza cimi@test"' in console
    assert domain_of(client, path).isActive()

    act(client, machine["id"], "stop", force=True)
    assert ok(cimi(client, "GET", machine["id"]))["state"] == "STOPPED"
    assert state(client, path) == "inactive" and not domain_of(client, path).isActive()

    assert client.post_text(f"{path}?action=start", []).status_code == 200
    assert ok(cimi(client, "GET", machine["id"]))["state"] == "STARTED"
    assert domain_of(client, path).isActive()

    act(client, machine["id"], "suspend")
    assert domain_of(client, path).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert state(client, path) == "suspended"
    assert ok(cimi(client, "GET", machine["id"]))["state"] == "SUSPENDED"

    deleted = cimi(client, "DELETE", machine["id"])
    assert deleted.status_code in (200, 202), deleted.get_data(as_text=True)
    job = deleted.headers["CIMI-Job-URI"].removeprefix("http://localhost")
    deadline = time.monotonic() + 60
    while ok(cimi(client, "GET", job))["state"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ok(cimi(client, "GET", job))["state"] == "SUCCESS"
    assert cimi(client, "GET", machine["id"]).status_code == 404
    assert client.get(path).status_code == 404 and domain_of(client, path) is None

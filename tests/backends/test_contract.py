"""The behaviour every backend promises (occi_server.backends.base), run
against each implementation. Real backends join the parameter list."""

from __future__ import annotations

import pytest

from occi_server.backends.base import Backends, Context
from occi_server.backends.simulated import simulated_backends
from occi_server.core import Entity
from occi_server.errors import BackendFailure
from tests.conftest import COMPUTE, NETWORK, NETWORKINTERFACE, STORAGE, STORAGELINK


def simulated(failures: list[str] | None = None) -> Backends:
    return simulated_backends([{"term": "img", "title": "Image"}], failures or [])


BACKENDS = {"simulated": simulated}


@pytest.fixture(params=sorted(BACKENDS))
def backends(request) -> Backends:
    return BACKENDS[request.param]()


def compute(state: str = "inactive") -> Entity:
    return Entity(id="c1", kind=COMPUTE, location="/compute/c1",
                  attributes={"occi.core.id": "c1", "occi.compute.cores": 1,
                              "occi.compute.memory": 0.25, "occi.compute.state": state})


def network() -> Entity:
    return Entity(id="n1", kind=NETWORK, location="/network/n1",
                  attributes={"occi.core.id": "n1", "occi.network.state": "inactive"})


def storage() -> Entity:
    return Entity(id="s1", kind=STORAGE, location="/storage/s1",
                  attributes={"occi.core.id": "s1", "occi.storage.size": 1.0,
                              "occi.storage.state": "offline"})


def test_compute_lifecycle(backends: Backends) -> None:
    guest = compute()
    image = backends.compute.images()[0]
    created = backends.compute.create(guest, image, Context(ssh_keys=("ssh-ed25519 AAAA",),
                                                            user_data=b"#!/bin/sh\n"))
    assert created["occi.compute.state"] == "active"
    guest.attributes.update(created)
    for action, expected in [("stop", "inactive"), ("start", "active"),
                             ("suspend", "suspended"), ("start", "active"),
                             ("restart", "active")]:
        outcome = backends.compute.act(guest, action, {"method": None})
        assert outcome.attributes["occi.compute.state"] == expected, action
        guest.attributes.update(outcome.attributes)
    backends.compute.delete(guest)
    backends.compute.delete(guest)  # deleting what is gone succeeds


def test_save_produces_an_image(backends: Backends) -> None:
    guest = compute("active")
    outcome = backends.compute.act(guest, "save", {"method": "hot", "name": "golden"})
    assert outcome.image is not None and outcome.image.title == "golden"


def test_storage_lifecycle(backends: Backends) -> None:
    volume = storage()
    volume.attributes.update(backends.storage.create(volume))
    assert volume.attributes["occi.storage.state"] == "online"
    volume.attributes.update(backends.storage.act(volume, "offline", {}).attributes)
    assert volume.attributes["occi.storage.state"] == "offline"
    backends.storage.update(volume, {"occi.storage.size": 2.0})
    backends.storage.delete(volume)


def test_network_lifecycle_and_binding(backends: Backends) -> None:
    net, guest = network(), compute("active")
    net.attributes.update(backends.network.create(net))
    assert net.attributes["occi.network.state"] == "active"
    nic = Entity(id="l1", kind=NETWORKINTERFACE, location="/link/networkinterface/l1",
                 source=guest.location, target=net.location, attributes={})
    bound = backends.network.bind(nic, net)
    assert len(bound["occi.networkinterface.mac"].split(":")) == 6
    nic.attributes.update(bound)
    assert backends.compute.attach_network(guest, nic, net, backends.network.bridge(net))[
        "occi.networkinterface.state"] == "active"
    backends.compute.detach_network(guest, nic)
    backends.network.unbind(nic, net)
    assert backends.network.act(net, "down", {}).attributes["occi.network.state"] == "inactive"
    backends.network.delete(net)


def test_storage_attachment(backends: Backends) -> None:
    guest, volume = compute("active"), storage()
    link = Entity(id="l2", kind=STORAGELINK, location="/link/storagelink/l2",
                  source=guest.location, target=volume.location,
                  attributes={"occi.storagelink.deviceid": "/dev/vdb"})
    assert backends.compute.attach_storage(guest, link, volume, backends.storage.source(
        volume))["occi.storagelink.state"] == "active"
    backends.compute.detach_storage(guest, link)


@pytest.mark.parametrize("operation", ["compute.create", "storage.create", "network.create"])
def test_failures_are_reported_as_backend_failure(operation: str) -> None:
    failing = simulated([operation])
    with pytest.raises(BackendFailure, match=operation):
        if operation == "compute.create":
            failing.compute.create(compute(), None, Context())
        elif operation == "storage.create":
            failing.storage.create(storage())
        else:
            failing.network.create(network())


def test_simulated_backends_say_so() -> None:
    assert simulated().simulated

"""The client library against a real running server, in every media type."""

from __future__ import annotations

import pytest

from occi_server.client import ClientError, OcciClient
from occi_server.client.api import MEDIA_TYPES
from tests.integration.test_serve import Server


@pytest.fixture(params=MEDIA_TYPES)
def client(request, server: Server) -> OcciClient:
    return OcciClient(server.url, media_type=request.param)


def test_discovery(client: OcciClient) -> None:
    model = client.discover()
    assert model.kind("compute").location == "/compute/"
    assert model.mixin("os_tpl#debian-12").location == "/mixin/os_tpl/debian-12/"
    assert {m.term for m in model.templates("resource_tpl")} >= {"small", "medium", "large"}
    with pytest.raises(ClientError, match="no mixin"):
        model.mixin("os_tpl#windows-95")


def test_full_lifecycle(client: OcciClient) -> None:
    model = client.discover()
    network = client.create(model.kind("network"), mixins=[model.mixin("ipnetwork")],
                            attributes={"occi.network.address": "10.31.0.0/24",
                                        "occi.network.gateway": "10.31.0.1"})
    title = f"vm in {client.media_type}, with a comma"
    vm = client.create(model.kind("compute"),
                       mixins=[model.mixin("os_tpl#debian-12"), model.mixin("resource_tpl#small")],
                       attributes={"occi.core.title": title}, links=[(network, None)])
    assert vm.startswith(client.endpoint + "/compute/")
    entity = client.describe(vm)
    assert (entity.state, entity.attributes["occi.core.title"]) == ("active", title)
    assert entity.addresses == ["10.31.0.2"]
    assert "stop" in entity.actions
    assert client.list("compute", attributes={"occi.core.title": title}) == [vm]
    assert vm in client.list("/mixin/resource_tpl/small/")
    assert vm in client.list("compute", categories=[model.mixin("resource_tpl#small")])
    resized = client.update(vm, mixins=[model.mixin("resource_tpl#large")],
                            attributes={"occi.core.summary": "bigger"})
    assert (resized.attributes["occi.compute.cores"], resized.attributes["occi.core.summary"]) \
        == (4, "bigger")
    stopped = client.trigger(vm, "stop", {"method": "poweroff"})
    assert stopped.state == "inactive" and "start" in stopped.actions
    storage = client.create(model.kind("storage"), attributes={"occi.storage.size": 2.0})
    disk = client.link(vm, storage, attributes={"occi.storagelink.mountpoint": "/data"})
    assert disk.startswith(client.endpoint + "/link/storagelink/")
    assert any(link.target == client._path(storage) for link in client.describe(vm).links)
    client.unlink(disk)
    assert all(link.kind.endswith("networkinterface") for link in client.describe(vm).links)
    for location in (vm, storage, network):
        client.delete(location)
    assert vm not in client.list("compute")


def test_errors_carry_the_status_and_the_sites_message(client: OcciClient) -> None:
    with pytest.raises(ClientError) as refused:
        client.describe("/compute/nothing-here")
    assert refused.value.status == 404 and "nothing at /compute/nothing-here" in str(
        refused.value)
    model = client.discover()
    with pytest.raises(ClientError) as bad:
        client.create(model.kind("compute"), attributes={"occi.compute.cores": 0})
    assert bad.value.status == 400 and "minimum" in bad.value.message


def test_unreachable_site() -> None:
    with pytest.raises(ClientError, match="cannot reach") as error:
        OcciClient("http://127.0.0.1:9", timeout=2).discover()
    assert error.value.status is None


def test_a_listing_follows_the_pages_of_a_long_collection(tmp_path) -> None:
    server = Server(tmp_path / "data")
    server.start(workers=1, default_page_size="2")
    try:
        for media_type in MEDIA_TYPES:
            client = OcciClient(server.url, media_type=media_type)
            if media_type == MEDIA_TYPES[0]:
                made = [client.create(client.discover().kind("network")) for _ in range(5)]
            assert sorted(client.list("network")) == sorted(made)
    finally:
        server.stop()

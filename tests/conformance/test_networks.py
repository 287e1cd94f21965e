"""IP networks and their interfaces as a client sees them, whatever the backend:
what is refused, and addresses and MACs that are never handed out twice."""

from __future__ import annotations

import pytest

from tests.conftest import IPNETWORK, NETWORK, NETWORKINTERFACE, Client, category

IPNETWORKINTERFACE = ("http://schemas.ogf.org/occi/infrastructure/networkinterface#"
                      "ipnetworkinterface")
PUBLIC = "http://schemas.occi-server.org/occi/infrastructure/network#public"


def post_network(client: Client, *attributes: str, mixins: tuple[str, ...] = (IPNETWORK,)):
    return client.post_text("/network/", [
        category(NETWORK, "kind"), *(category(m, "mixin") for m in mixins),
        *(f"X-OCCI-Attribute: {a}" for a in attributes)])


@pytest.mark.parametrize(("attributes", "status", "message"), [
    (['occi.network.address="10.9.0.0/24"', 'occi.network.gateway="10.9.1.1"'], 400,
     "not a host address"),
    (['occi.network.address="10.9.0.0/24"', 'occi.network.gateway="10.9.0.255"'], 400,
     "not a host address"),
    (['occi.network.address="fd00::/64"'], 400, "IPv6"),
    (['occi.network.address="10.9.0.7/24"'], 400, "host bits set"),
    (['occi.network.address="10.9.0.0/31"'], 400, "no room"),
    (['occi.network.address="10.9.0.0/24"', "occi.network.vlan=0"], 400, "occi.network.vlan"),
    (['occi.network.address="10.9.0.0/24"', "occi.network.vlan=4095"], 400,
     "occi.network.vlan"),
])
def test_networks_the_site_cannot_serve_are_refused(client: Client, attributes: list[str],
                                                    status: int, message: str) -> None:
    response = post_network(client, *attributes)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert "Location" not in client.get("/network/").get_data(as_text=True)


def test_overlapping_networks_are_refused(client: Client) -> None:
    first = client.network("10.9.0.0/24", "10.9.0.1")
    response = post_network(client, 'occi.network.address="10.9.0.128/25"')
    assert response.status_code == 409
    assert f"overlaps 10.9.0.0/24 of {first}" in response.get_data(as_text=True)
    assert client.request("DELETE", first).status_code == 200
    assert post_network(client, 'occi.network.address="10.9.0.128/25"').status_code == 201


def test_a_public_network_needs_addresses(client: Client) -> None:
    response = post_network(client, mixins=(PUBLIC,))
    assert response.status_code == 400 and "public network" in response.get_data(as_text=True)
    assert post_network(client, 'occi.network.address="10.9.0.0/24"',
                        mixins=(IPNETWORK, PUBLIC)).status_code == 201


def interface(client: Client, compute: str, network: str, *attributes: str):
    return client.post_text("/link/networkinterface/", [
        category(NETWORKINTERFACE, "kind"), category(IPNETWORKINTERFACE, "mixin"),
        f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{network}"',
        *(f"X-OCCI-Attribute: {a}" for a in attributes)])


def test_addresses_and_macs_are_handed_out_once(client: Client) -> None:
    network, compute = client.network("10.9.0.0/29", "10.9.0.1"), client.compute()
    given = []
    for _ in range(5):  # a /29 has six host addresses; the gateway holds one
        response = interface(client, compute, network)
        assert response.status_code == 201, response.get_data(as_text=True)
        given.append(client.attributes(response.headers["Location"].removeprefix(
            "http://localhost")))
    assert [a["occi.networkinterface.address"] for a in given] == [
        f"10.9.0.{n}" for n in range(2, 7)]
    assert len({a["occi.networkinterface.mac"] for a in given}) == 5
    full = interface(client, compute, network)
    assert full.status_code == 409 and "no free address" in full.get_data(as_text=True)


def test_the_lowest_free_address_is_given_around_the_gateway_and_after_a_delete(
        client: Client) -> None:
    network, compute = client.network("10.9.0.0/29", "10.9.0.4"), client.compute()
    given = {}
    for _ in range(5):
        response = interface(client, compute, network)
        assert response.status_code == 201, response.get_data(as_text=True)
        location = response.headers["Location"].removeprefix("http://localhost")
        given[client.attributes(location)["occi.networkinterface.address"]] = location
    assert sorted(given) == ["10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.5", "10.9.0.6"]
    assert client.request("DELETE", given["10.9.0.2"]).status_code == 200
    again = interface(client, compute, network)
    assert again.status_code == 201, again.get_data(as_text=True)
    assert client.attributes(again.headers["Location"].removeprefix("http://localhost"))[
        "occi.networkinterface.address"] == "10.9.0.2"


def test_static_addresses_and_chosen_macs_are_checked(client: Client) -> None:
    network, compute = client.network("10.9.0.0/24", "10.9.0.1"), client.compute()
    first = interface(client, compute, network, 'occi.networkinterface.allocation="static"',
                      'occi.networkinterface.address="10.9.0.50"',
                      'occi.networkinterface.mac="52:54:00:aa:bb:cc"')
    assert first.status_code == 201, first.get_data(as_text=True)
    taken = interface(client, compute, network, 'occi.networkinterface.allocation="static"',
                      'occi.networkinterface.address="10.9.0.50"')
    assert taken.status_code == 409 and "already in use" in taken.get_data(as_text=True)
    outside = interface(client, compute, network, 'occi.networkinterface.allocation="static"',
                        'occi.networkinterface.address="10.10.0.5"')
    assert outside.status_code == 409 and "outside" in outside.get_data(as_text=True)
    same_mac = interface(client, compute, network, 'occi.networkinterface.mac="52:54:00:AA:BB:CC"')
    assert same_mac.status_code == 409 and "52:54:00:aa:bb:cc" in same_mac.get_data(as_text=True)
    multicast = interface(client, compute, network, 'occi.networkinterface.mac="01:00:5e:00:00:01"')
    assert multicast.status_code == 400 and "multicast" in multicast.get_data(as_text=True)
    # Deleting the interface frees its address and MAC.
    assert client.request("DELETE", first.headers["Location"].removeprefix(
        "http://localhost")).status_code == 200
    again = interface(client, compute, network, 'occi.networkinterface.allocation="static"',
                      'occi.networkinterface.address="10.9.0.50"',
                      'occi.networkinterface.mac="52:54:00:aa:bb:cc"')
    assert again.status_code == 201, again.get_data(as_text=True)


def test_addresses_of_a_network_in_use_cannot_change(client: Client) -> None:
    network, compute = client.network("10.9.0.0/24", "10.9.0.1"), client.compute()
    assert interface(client, compute, network).status_code == 201
    response = client.post_text(network, ['X-OCCI-Attribute: occi.network.address="10.8.0.0/24"'])
    assert response.status_code == 409 and "has interfaces" in response.get_data(as_text=True)
    assert client.attributes(network)["occi.network.address"] == "10.9.0.0/24"
    assert client.post_text(network, ['X-OCCI-Attribute: occi.network.label="lab"']
                            ).status_code == 200

"""Security groups enforced by the kernel: the real tiny guest (QEMU on a tap
on the network's bridge, with the MAC the API chose, listening on TCP 8080 and
8081) and a client namespace on the same bridge. Connections and pings go
through exactly as the compute's groups (or the site's default rules) say,
change when a group changes, and a filter that vanished is put back by the
reconciler. Everything happens inside namespaces the test creates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.backends.bridge import bridge_name
from occi_server.backends.filters import table
from occi_server.service import Reconciler
from tests.conftest import SECURITYGROUP, SECURITYGROUPLINK, Client
from tests.integration.test_networks import bridge_site, create_network
from tests.support.netns import Namespaces, run
from tests.support.tinyguest import connects, pings, tiny_guest, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")
CLIENT = "10.78.0.200"


@pytest.fixture
def client(make_app, namespaces: Namespaces, networks_dir: Path) -> Client:
    return bridge_site(make_app, namespaces, networks_dir)


@pytest.fixture
def guest(client: Client, namespaces: Namespaces, tmp_path: Path) -> Iterator[dict]:
    """The tiny guest on a network, and a client namespace (the test's "guest"
    namespace) on the same bridge at CLIENT."""
    network = create_network(client, "10.78.0.0/24", "10.78.0.1")
    run("ip", "-n", namespaces.host, "link", "add", "tapclient0", "type", "veth", "peer", "name",
        "eth0", "netns", namespaces.guest)
    run("ip", "-n", namespaces.host, "link", "set", "tapclient0", "master",
        bridge_name(client.stored(network)), "up")
    run("ip", "-n", namespaces.guest, "addr", "add", f"{CLIENT}/24", "dev", "eth0")
    run("ip", "-n", namespaces.guest, "link", "set", "eth0", "up")
    with tiny_guest(client, namespaces, network, tmp_path / "console.log") as found:
        yield found


def reachable(spaces: Namespaces, address: str) -> tuple[bool, bool, bool]:
    return connects(spaces, address, 8080), connects(spaces, address, 8081), \
        pings(spaces, address)


def rules(*ports: int, icmp: bool = False) -> list[dict]:
    found = [{"type": "inbound", "protocol": "tcp", "port": str(port), "range": "10.78.0.0/24"}
             for port in ports]
    return found + ([{"type": "inbound", "protocol": "icmp"}] if icmp else [])


def test_traffic_goes_through_as_the_groups_say(client: Client, namespaces: Namespaces,
                                                guest: dict) -> None:
    address = guest["address"]
    # In no group: the site's default rules (SSH and ICMP) and nothing else.
    assert reachable(namespaces, address) == (False, False, True)
    response = client.post_json("/securitygroup/", {"kind": SECURITYGROUP, "attributes": {
        "occi.core.title": "web", "occi.securitygroup.rules": rules(8080)}})
    assert response.status_code == 201, response.get_data(as_text=True)
    group = response.headers["Location"].removeprefix("http://localhost")
    link = client.create(SECURITYGROUPLINK,
                         f'X-OCCI-Attribute: occi.core.source="{guest["compute"]}"',
                         f'X-OCCI-Attribute: occi.core.target="{group}"')
    assert reachable(namespaces, address) == (True, False, False)
    changed = client.post_json(group, {"kind": SECURITYGROUP, "attributes": {
        "occi.securitygroup.rules": rules(8081, icmp=True)}})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert reachable(namespaces, address) == (False, True, True)
    # A range the client is not in lets nothing of it through.
    client.post_json(group, {"kind": SECURITYGROUP, "attributes": {"occi.securitygroup.rules": [
        {"type": "inbound", "protocol": "tcp", "port": "8080-8081", "range": "10.79.0.0/24"}]}})
    assert reachable(namespaces, address) == (False, False, False)
    assert client.request("DELETE", link).status_code == 200
    assert reachable(namespaces, address) == (False, False, True)


def test_outbound_rules_hold_the_guests_own_traffic(client: Client, namespaces: Namespaces,
                                                    guest: dict) -> None:
    """With an outbound rule, what the guest answers still leaves (replies), and
    its filter's DHCP exception lets it renew its lease."""
    response = client.post_json("/securitygroup/", {"kind": SECURITYGROUP, "attributes": {
        "occi.securitygroup.rules": [
            *rules(8080, icmp=True),
            {"type": "outbound", "protocol": "udp", "port": "53", "range": "10.78.0.1/32"}]}})
    group = response.headers["Location"].removeprefix("http://localhost")
    client.create(SECURITYGROUPLINK, f'X-OCCI-Attribute: occi.core.source="{guest["compute"]}"',
                  f'X-OCCI-Attribute: occi.core.target="{group}"')
    assert reachable(namespaces, guest["address"]) == (True, False, True)


def test_a_filter_that_vanished_is_put_back(client: Client, namespaces: Namespaces,
                                            guest: dict) -> None:
    name = table(guest["key"])
    run("ip", "netns", "exec", namespaces.host, "nft", "delete", "table", "bridge", name)
    assert connects(namespaces, guest["address"], 8080)  # unfiltered meanwhile
    service = client.app.extensions["occi.service"]
    assert Reconciler(service, 0).run_once() >= 1
    assert name in run("ip", "netns", "exec", namespaces.host, "nft", "list", "tables").stdout
    assert not connects(namespaces, guest["address"], 8080)
    assert client.request("DELETE", guest["nic"]["path"]).status_code == 200
    assert name not in run("ip", "netns", "exec", namespaces.host, "nft", "list",
                           "tables").stdout

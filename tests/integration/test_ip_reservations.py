"""A reserved public address for real: the site's uplink leads to the test's
other namespace (the world outside, at 192.0.2.1), the tiny guest runs on a
public network, and its reservation from the pool 192.0.2.128/28 makes it
reachable from outside at that address (1:1 NAT, the address answered on the
uplink), filtered by its security groups, until the link goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from occi_server.backends.nat import Nat
from occi_server.service import Reconciler
from tests.conftest import IPNETWORK, NETWORKINTERFACE, SECURITYGROUP, SECURITYGROUPLINK, Client
from tests.conftest import category as occi_category
from tests.integration.test_networks import PUBLIC, bridge_site, create_network
from tests.support.netns import Namespaces, run
from tests.support.tinyguest import connects, pings, tiny_guest, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")
IPRESERVATION = "http://schemas.ogf.org/occi/infrastructure#ipreservation"


@pytest.fixture
def client(make_app, namespaces: Namespaces, networks_dir: Path) -> Client:
    # The uplink's other end goes to the test's other namespace: the outside world.
    run("ip", "-n", namespaces.host, "link", "set", "outside0", "netns", namespaces.guest)
    run("ip", "-n", namespaces.guest, "addr", "add", "192.0.2.1/24", "dev", "outside0")
    run("ip", "-n", namespaces.guest, "link", "set", "outside0", "up")
    run("ip", "-n", namespaces.host, "addr", "add", "192.0.2.2/24", "dev", "uplink0")
    return bridge_site(make_app, namespaces, networks_dir,
                       floating_ip_pools={"public": "192.0.2.128/28"})


def test_a_reserved_address_reaches_the_guest_from_outside(client: Client,
                                                           namespaces: Namespaces,
                                                           tmp_path: Path) -> None:
    network = create_network(client, "10.80.0.0/24", "10.80.0.1", mixins=(IPNETWORK, PUBLIC))
    with tiny_guest(client, namespaces, network, tmp_path / "console.log") as guest:
        made = client.post_text("/ipreservation/", [occi_category(IPRESERVATION, "kind")])
        assert made.status_code == 201, made.get_data(as_text=True)
        reservation = made.headers["Location"].removeprefix("http://localhost")
        public = client.attributes(reservation)["occi.ipreservation.address"]
        assert public == "192.0.2.129"
        assert not pings(namespaces, public)  # reserved, leading nowhere yet
        link = client.create(NETWORKINTERFACE,
                             f'X-OCCI-Attribute: occi.core.source="{guest["compute"]}"',
                             f'X-OCCI-Attribute: occi.core.target="{reservation}"')
        assert pings(namespaces, public)  # the default rules let ICMP in
        assert not connects(namespaces, public, 8080)  # and not TCP 8080
        group = client.post_json("/securitygroup/", {"kind": SECURITYGROUP, "attributes": {
            "occi.securitygroup.rules": [{"type": "inbound", "protocol": "tcp",
                                          "port": "8080", "range": "192.0.2.0/24"}]}})
        client.create(SECURITYGROUPLINK,
                      f'X-OCCI-Attribute: occi.core.source="{guest["compute"]}"',
                      'X-OCCI-Attribute: occi.core.target="'
                      f'{group.headers["Location"].removeprefix("http://localhost")}"')
        assert connects(namespaces, public, 8080)
        table = Nat.reservation_table(client.key(reservation))
        rules = run("ip", "netns", "exec", namespaces.host, "nft", "list", "table", "ip",
                    table).stdout
        assert f"dnat to {guest['address']}" in rules and f"snat to {public}" in rules
        # A table that vanished is put back by the reconciler.
        run("ip", "netns", "exec", namespaces.host, "nft", "delete", "table", "ip", table)
        assert not connects(namespaces, public, 8080)
        service = client.app.extensions["occi.service"]
        assert Reconciler(service, 0).run_once() >= 1
        assert connects(namespaces, public, 8080)
        assert client.request("DELETE", link).status_code == 200
        assert not pings(namespaces, public)
        assert table not in run("ip", "netns", "exec", namespaces.host, "nft", "list",
                                "tables").stdout
        assert client.request("DELETE", reservation).status_code == 200

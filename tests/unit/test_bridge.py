"""The bridge backend at its netlink boundary, for what this kernel cannot do
for real (802.1Q needs the 8021q module): the calls it makes, against a
stand-in that keeps a table of links. tests/integration/test_networks.py runs
the rest on real bridges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from occi_server.backends.bridge import BridgeNetwork, bridge_name, vlan_port_name
from occi_server.backends.dhcp import DhcpServers
from occi_server.backends.filters import Filters
from occi_server.core import Entity
from occi_server.errors import BackendFailure, Conflict

NETWORK = "http://schemas.ogf.org/occi/infrastructure#network"


class FakeNetlink:
    def __init__(self) -> None:
        self.links: dict[str, dict[str, Any]] = {"lo": {"index": 1, "flags": 0},
                                                 "eth1": {"index": 2, "flags": 1}}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self) -> FakeNetlink:
        return self

    def __enter__(self) -> FakeNetlink:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def link_lookup(self, ifname: str) -> list[int]:
        return [self.links[ifname]["index"]] if ifname in self.links else []

    def _name(self, index: int) -> str:
        return next(name for name, link in self.links.items() if link["index"] == index)

    def link(self, command: str, **args: Any) -> None:
        self.calls.append((command, args))
        if command == "add":
            self.links[args["ifname"]] = {"index": len(self.links) + 1, "flags": 0, **args}
        elif command == "set":
            link = self.links[self._name(args["index"])]
            link.update(args)
            link["flags"] = 1 if args.get("state", "up" if link["flags"] else "down") == "up" \
                else 0
        elif command == "del":
            del self.links[self._name(args["index"])]

    def addr(self, command: str, **args: Any) -> None:
        self.calls.append((f"addr {command}", args))

    def get_addr(self, index: int) -> list[Any]:
        return []

    def get_links(self, index: int | None = None) -> list[Link]:
        names = [self._name(index)] if index is not None else list(self.links)
        return [Link(name, self.links[name]) for name in names]


class Link(dict):
    """A link as pyroute2 gives it: its fields, and its attributes by IFLA name."""

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.name = name

    def get_attr(self, attribute: str) -> Any:
        return {"IFLA_IFNAME": self.name, "IFLA_MASTER": self.get("master")}.get(attribute)


def vlan_network(vlan: int = 42) -> Entity:
    return Entity(id="n1", key="0123456789ab", kind=NETWORK, location="/network/n1", attributes={
        "occi.network.vlan": vlan, "occi.network.address": "10.5.0.0/24",
        "occi.network.gateway": "10.5.0.1", "occi.network.allocation": "static"})


@pytest.fixture
def netlink() -> FakeNetlink:
    return FakeNetlink()


def test_a_vlan_port_is_tagged_on_the_uplink_and_joins_the_bridge(
        netlink: FakeNetlink, tmp_path: Path) -> None:
    backend = BridgeNetwork(netlink, DhcpServers(tmp_path), Filters(), uplink="eth1")
    state = backend.create(vlan_network())
    bridge, port = bridge_name(vlan_network()), vlan_port_name(vlan_network())
    assert state["occi.network.state"] == "active"
    assert ("add", {"ifname": bridge, "kind": "bridge"}) in netlink.calls
    assert ("add", {"ifname": port, "kind": "vlan", "link": 2, "vlan_id": 42}) in netlink.calls
    assert netlink.links[port]["master"] == netlink.links[bridge]["index"]
    assert ("addr add", {"index": netlink.links[bridge]["index"], "address": "10.5.0.1",
                         "prefixlen": 24}) in netlink.calls
    backend.delete(vlan_network())
    assert set(netlink.links) == {"lo", "eth1"}  # port and bridge gone, the uplink kept


def test_a_missing_uplink_leaves_nothing_behind(netlink: FakeNetlink, tmp_path: Path) -> None:
    backend = BridgeNetwork(netlink, DhcpServers(tmp_path), Filters(), uplink="eth9")
    with pytest.raises(BackendFailure, match="uplink eth9 does not exist"):
        backend.create(vlan_network())
    assert set(netlink.links) == {"lo", "eth1"}


def test_no_uplink_no_vlans(netlink: FakeNetlink, tmp_path: Path) -> None:
    with pytest.raises(Conflict, match="no uplink"):
        BridgeNetwork(netlink, DhcpServers(tmp_path), Filters()).create(vlan_network())
    assert netlink.calls == []


def test_interface_names_fit_linux_and_never_come_from_the_client() -> None:
    for network_id in ("n1", "x" * 200, "../../etc;reboot"):
        network = Entity(id=network_id, key="00ff00ff00ff", kind=NETWORK,
                         location=f"/network/{network_id}")
        assert bridge_name(network) == "ob00ff00ff00ff"
        assert vlan_port_name(network) == "ov00ff00ff00ff"
    for key in ("", "n1", "x" * 12, "0123456789abc", "0123456789a;"):
        with pytest.raises(BackendFailure, match="not a network key"):
            bridge_name(Entity(id="n1", key=key, kind=NETWORK, location="/network/n1"))


def test_deleting_a_network_removes_its_tunnels_to_other_hosts(netlink: FakeNetlink,
                                                                tmp_path: Path) -> None:
    network = BridgeNetwork(netlink, DhcpServers(tmp_path), Filters())
    entity = Entity(id="n1", key="0123456789ab", kind=NETWORK, location="/network/n1")
    network.create(entity)
    bridge = netlink.links["ob0123456789ab"]["index"]
    netlink.link("add", ifname="ox0a1b2c3d4e5f6", kind="vxlan")
    netlink.link("set", index=netlink.link_lookup("ox0a1b2c3d4e5f6")[0], master=bridge)
    netlink.link("add", ifname="oxfeedfeedfeed0", kind="vxlan")  # another bridge's
    network.delete(entity)
    assert set(netlink.links) == {"lo", "eth1", "oxfeedfeedfeed0"}

"""Networks as Linux bridges, made with pyroute2 (netlink, no `ip` commands):
the gateway address on the bridge, an 802.1Q sub-interface of the uplink as
its port when the network has a VLAN, a dnsmasq for dynamic allocation, and
nftables masquerading for public networks.

Interface names derive from the server's key of each network (`ob<key>` for
bridges, `ov<key>` for VLAN ports): no client value becomes an interface name,
and every name fits Linux's 15 characters. Everything can live in a network namespace
(`network_namespace`), where the service's tests put it. Tunnels to other
hypervisor hosts (`ox…`, libvirt/fabric.py) go with their bridge."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from occi_server.backends.base import ActionOutcome, Attributes, NetworkBackend, Rule
from occi_server.backends.dhcp import DhcpServers
from occi_server.backends.filters import Filters
from occi_server.backends.nat import Nat
from occi_server.core import Entity
from occi_server.errors import BackendFailure, BackendUnavailable, Conflict
from occi_server.kinds.infrastructure import PUBLIC_NETWORK

if TYPE_CHECKING:
    from occi_server.config import Config

log = logging.getLogger("occi_server.network")
IFF_UP = 0x1
# An IPRoute for the namespace (or the host): a context manager over netlink.
Netlink = Callable[[], Any]


_KEY = re.compile(r"[0-9a-f]{12}")


def bridge_name(network: Entity) -> str:
    return "ob" + _key(network)


def vlan_port_name(network: Entity) -> str:
    return "ov" + _key(network)


def _key(network: Entity) -> str:
    return _checked_key(network.key, "network")


def _checked_key(key: str, what: str = "reservation") -> str:
    if not _KEY.fullmatch(key):
        raise BackendFailure(f"{key!r} is not a {what} key of this server")
    return key


class BridgeNetwork(NetworkBackend):
    name = "bridge"
    observes = True

    def __init__(self, netlink: Netlink, dhcp: DhcpServers, filters: Filters, uplink: str = "",
                 nat: Nat | None = None, namespace: str = "") -> None:
        self.netlink = netlink
        self.dhcp = dhcp
        self.filters = filters
        self.uplink = uplink
        self.nat = nat
        self.namespace = namespace

    @property
    def label(self) -> str:
        where = f"network namespace {self.namespace}" if self.namespace else "this host"
        uplink = f", uplink {self.uplink}" if self.uplink else ", no uplink"
        return f"Linux bridges in {where}{uplink}"

    @contextmanager
    def _ip(self) -> Iterator[Any]:
        try:
            with self.netlink() as ip:
                yield ip
        except (NetlinkError, OSError) as exc:
            raise BackendFailure(f"netlink refused: {exc}") from None

    @staticmethod
    def _index(ip: Any, name: str) -> int | None:
        found = ip.link_lookup(ifname=name)
        return found[0] if found else None

    # ------------------------------------------------------------ lifecycle
    def create(self, network: Entity) -> Attributes:
        values = network.attributes
        public = PUBLIC_NETWORK.type_id in network.mixins
        vlan = values.get("occi.network.vlan")
        if (vlan or public) and not self.uplink:
            raise Conflict(f"this site has no uplink (network_uplink), so it cannot "
                           f"{'tag VLANs' if vlan else 'offer public networks'}")
        bridge = bridge_name(network)
        try:
            self._make_bridge(network, bridge, vlan)
            self._serve(network, bridge)
        except BaseException:
            self.delete(network)
            raise
        return self._state(bridge)

    def _make_bridge(self, network: Entity, bridge: str, vlan: Any) -> None:
        """The bridge, its gateway address and VLAN port; kept if they exist (a restart)."""
        cidr = network.attributes.get("occi.network.address")
        gateway = network.attributes.get("occi.network.gateway")
        with self._ip() as ip:
            if self.namespace:  # a new namespace's loopback is down; dhcp_release needs it
                ip.link("set", index=self._index(ip, "lo"), state="up")
            if self._index(ip, bridge) is None:
                ip.link("add", ifname=bridge, kind="bridge")
            index = self._index(ip, bridge)
            if cidr and gateway:
                prefix = ipaddress.IPv4Network(cidr).prefixlen
                present = {a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=index)}
                if gateway not in present:
                    ip.addr("add", index=index, address=gateway, prefixlen=prefix)
            if vlan:
                port = vlan_port_name(network)
                uplink = self._index(ip, self.uplink)
                if uplink is None:
                    raise BackendFailure(f"the uplink {self.uplink} does not exist")
                if self._index(ip, port) is None:
                    ip.link("add", ifname=port, kind="vlan", link=uplink, vlan_id=int(vlan))
                ip.link("set", index=self._index(ip, port), master=index, state="up")
            ip.link("set", index=index, state="up")

    @staticmethod
    def _dynamic(network: Entity) -> bool:
        """Whether the network hands out its addresses over DHCP."""
        return bool(network.attributes.get("occi.network.address")) and \
            network.attributes.get("occi.network.allocation", "dynamic") == "dynamic"

    def _serve(self, network: Entity, bridge: str) -> None:
        cidr = network.attributes.get("occi.network.address")
        if not cidr:
            return
        if self._dynamic(network):
            self.dhcp.start(bridge, cidr, network.attributes.get("occi.network.gateway"))
        if PUBLIC_NETWORK.type_id in network.mixins and self.nat is not None:
            self.nat.apply(bridge, cidr)

    def delete(self, network: Entity) -> None:
        bridge = bridge_name(network)
        self.dhcp.stop(bridge)
        if self.nat is not None:
            self.nat.remove(bridge)
        with self._ip() as ip:
            index = self._index(ip, bridge)
            # Its ports of our making: the VLAN port, tunnels to other hosts.
            ports = [link["index"] for link in ip.get_links()
                     if index is not None and link.get_attr("IFLA_MASTER") == index
                     and (link.get_attr("IFLA_IFNAME") or "").startswith("ox")]
            vlan_port = self._index(ip, vlan_port_name(network))
            for found in (*ports, vlan_port, index):
                if found is not None:
                    ip.link("del", index=found)

    def act(self, network: Entity, action: str, params: Attributes) -> ActionOutcome:
        bridge = bridge_name(network)
        with self._ip() as ip:
            index = self._index(ip, bridge)
            if index is None:
                raise BackendFailure(f"the bridge of {network.location} is missing")
            ip.link("set", index=index, state="up" if action == "up" else "down")
        return ActionOutcome(self._state(bridge))

    def update(self, network: Entity, changes: Attributes) -> Attributes:
        # The service lets addresses change only on networks without interfaces.
        if not self.takes.intersection(changes):
            return {}
        self.delete(network)
        return self.create(network)

    # ------------------------------------------------------------ interfaces
    def bind(self, link: Entity, network: Entity) -> Attributes:
        address = link.attributes.get("occi.networkinterface.address")
        if address and self._dynamic(network):
            self.dhcp.set_host(bridge_name(network),
                               str(link.attributes["occi.networkinterface.mac"]), str(address))
        return {}

    def unbind(self, link: Entity, network: Entity) -> None:
        mac = link.attributes.get("occi.networkinterface.mac")
        if mac:
            self.dhcp.remove_host(bridge_name(network), str(mac))

    def guard(self, link: Entity, network: Entity, rules: Sequence[Rule]) -> None:
        self.filters.apply(link.key, str(link.attributes.get("occi.networkinterface.mac", "")),
                           rules)

    def unguard(self, key: str) -> None:
        self.filters.remove(key)

    def guarded(self) -> set[str]:
        return self.filters.present()

    def publish(self, key: str, public: str, private: str, network: Entity) -> None:
        if self.nat is None or PUBLIC_NETWORK.type_id not in network.mixins:
            raise Conflict(f"{network.location} is not a public network of a site with an "
                           "uplink (network_uplink): no address can be published from it")
        self.nat.publish(_checked_key(key), public, private)

    def unpublish(self, key: str, public: str) -> None:
        if self.nat is not None:
            self.nat.unpublish(_checked_key(key), public)

    def published(self) -> dict[str, str]:
        return self.nat.published() if self.nat is not None else {}

    def bridge(self, network: Entity) -> str | None:
        bridge = bridge_name(network)
        with self._ip() as ip:
            return bridge if self._index(ip, bridge) is not None else None

    # ------------------------------------------------------------ orphans
    def orphans(self, known: list[Entity]) -> list[str]:
        """Our bridges (and VLAN ports left without one) no stored network accounts for."""
        ours = {name for network in known
                for name in (bridge_name(network), vlan_port_name(network))}
        with self._ip() as ip:
            links = [(str(link.get_attr("IFLA_IFNAME")), link.get_attr("IFLA_MASTER"))
                     for link in ip.get_links()]
        return sorted(name for name, master in links if name not in ours and (
            (name.startswith("ob") and _KEY.fullmatch(name[2:])) or
            (name.startswith("ov") and _KEY.fullmatch(name[2:]) and not master)))

    def discard_orphan(self, name: str) -> None:
        if name.startswith("ob"):
            self.dhcp.stop(name)
            if self.nat is not None:
                self.nat.remove(name)
        with self._ip() as ip:
            index = self._index(ip, name)
            if index is not None:
                ip.link("del", index=index)

    # ------------------------------------------------------------ observation
    def health(self) -> str:
        served = self.dhcp.served()
        down = [bridge for bridge in served if not self.dhcp.running(bridge)]
        if down:
            raise BackendFailure(f"the DHCP server of {', '.join(down)} is not running")
        with self._ip() as ip:
            bridges = [link.get_attr("IFLA_IFNAME") for link in ip.get_links()
                       if str(link.get_attr("IFLA_IFNAME")).startswith("ob")]
        return f"{len(bridges)} bridge(s), {len(served)} DHCP server(s) running, in " \
            f"{self.label}"

    def current_state(self, network: Entity) -> Attributes | None:
        """The bridge's real state; a DHCP server that died is started again and said so."""
        bridge = bridge_name(network)
        try:
            restarted = self.dhcp.heal(bridge)
        except (BackendFailure, BackendUnavailable) as exc:
            return {"occi.network.state": "error",
                    "occi.network.state.message": f"the DHCP server is down: {exc}"}
        state = self._state(bridge)
        if restarted:
            state["occi.network.state.message"] += " (its DHCP server had stopped and was "\
                "started again)"
        return state

    def _state(self, bridge: str) -> Attributes:
        with self._ip() as ip:
            index = self._index(ip, bridge)
            if index is None:
                return {"occi.network.state": "error",
                        "occi.network.state.message": f"bridge {bridge} is missing"}
            up = bool(ip.get_links(index)[0]["flags"] & IFF_UP)
        dhcp = ", DHCP served" if self.dhcp.running(bridge) else ""
        return {"occi.network.state": "active" if up else "inactive",
                "occi.network.state.message": f"bridge {bridge} {'up' if up else 'down'}{dhcp}"}


def netlink_of(namespace: str) -> Netlink:
    """Netlink in `namespace` (or the host's), never creating the namespace
    (pyroute2 would by default)."""
    def netlink() -> IPRoute:
        return IPRoute(netns=namespace, flags=0) if namespace else IPRoute()
    return netlink


def bridge_network(config: Config) -> BridgeNetwork:
    """Bridges, DHCP and NAT in the configured network namespace (or the host's)."""
    namespace = config.network_namespace
    enter: list[str] = []
    if namespace:
        if not Path(f"/run/netns/{namespace}").exists():
            raise BackendUnavailable(f"network namespace {namespace} does not exist "
                                     f"(create it with: ip netns add {namespace})")
        enter = ["nsenter", f"--net=/run/netns/{namespace}", "--"]

    netlink = netlink_of(namespace)
    nat = Nat(config.network_uplink, enter) if config.network_uplink else None
    return BridgeNetwork(netlink, DhcpServers(config.networks_path, enter), Filters(enter),
                         config.network_uplink, nat, namespace)

"""A network across hypervisor hosts: the network's bridge (the bridge
backend's, on the frontend: its gateway, DHCP server and NAT) is made on every
host reached over SSH that runs one of its guests, joined to the frontend's by
a VXLAN tunnel of its own (made on demand, removed with the host's last guest
on it).

All of a network's traffic passes the frontend's bridge, where security
groups are enforced (by MAC, backends/filters.py): on a host, guests' ports
are isolated from each other (libvirt's <port isolated='yes'/>) and reach
only the tunnel, and the frontend sends back (hairpin) what one guest there
sends another. The host's bridge learns no address from the tunnel (what
comes back through it carries its own guests' addresses too), so frames for
its guests go to their ports and every other frame to the tunnel. The price
is a round trip through the frontend for traffic between two guests of one
host.

Tunnels are named and numbered by the server: `ox` + 13 hex digits of a
digest of the bridge and the host's address on the frontend, `ox<key>` on
the host; the VXLAN id (VNI) is derived from the same digest and moved on
past any the frontend uses already (the kernel refuses two tunnels with one
id on one address). The frontend's address towards a host is the one its
route to that host leaves from."""

from __future__ import annotations

import hashlib
import logging
import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from occi_server.backends.libvirt import ssh
from occi_server.errors import BackendFailure, BackendUnavailable

log = logging.getLogger("occi_server.libvirt")

PORT = 4789
VNI_SPACE = 1 << 24
# On the host: make the bridge and its tunnel to the frontend, or keep them.
# Arguments: bridge, tunnel, VNI, the host's address, the frontend's.
EXTEND = """set -e
ip link show "$1" >/dev/null 2>&1 || ip link add "$1" type bridge
if ! ip -d link show "$2" 2>/dev/null | grep -q "vxlan id $3 remote $5 local $4 "; then
  ip link del "$2" 2>/dev/null || true
  ip link add "$2" type vxlan id "$3" local "$4" remote "$5" dstport 4789
fi
ip link set "$2" master "$1" up
bridge link set dev "$2" learning off
ip link set "$1" up
"""
# On the host: remove the bridge and its tunnel unless a guest is still on it
# (exit status 3). Arguments: bridge, tunnel.
RETRACT = """ports=$(ls "/sys/class/net/$1/brif" 2>/dev/null | grep -vx "$2" || true)
[ -z "$ports" ] || exit 3
ip link del "$2" 2>/dev/null || true
ip link del "$1" 2>/dev/null || true
"""
STILL_USED = 3


class Fabric:
    """Tunnels between the frontend's bridges (through `netlink`, where the
    bridge backend makes them) and the hosts', which it drives over SSH with
    the site's key (`data_path`)."""

    def __init__(self, netlink: Callable[[], Any], data_path: Path) -> None:
        self.netlink = netlink
        self.data_path = data_path

    def extend(self, bridge: str, host: ssh.Target) -> None:
        """The network of `bridge` reaches `host`: its bridge there, joined by a tunnel."""
        address = ssh.address_of(host)
        with self._ip() as ip:
            frontend, vni = self._tunnel(ip, bridge, address)
        self._on(host, EXTEND, bridge, _host_tunnel(bridge), str(vni), address, frontend)

    def retract(self, bridge: str, host: ssh.Target) -> None:
        """The network of `bridge` leaves `host` once no guest there is on it."""
        if not self._on(host, RETRACT, bridge, _host_tunnel(bridge)):
            return
        address = ssh.address_of(host)
        with self._ip() as ip:
            found = ip.link_lookup(ifname=_frontend_tunnel(bridge, address))
            if found:
                ip.link("del", index=found[0])

    def _tunnel(self, ip: Any, bridge: str, address: str) -> tuple[str, int]:
        """The frontend's tunnel to `address` on `bridge` (made if missing):
        its local address and VNI."""
        name = _frontend_tunnel(bridge, address)
        [bridge_index] = ip.link_lookup(ifname=bridge) or [None]
        if bridge_index is None:
            raise BackendFailure(f"the network's bridge {bridge} is missing on the frontend")
        tunnels = _tunnels(ip)
        if name in tunnels:
            local, vni = tunnels[name]
            return local, vni
        routes = ip.route("get", dst=address)
        local = next((r.get_attr("RTA_PREFSRC") for r in routes if r.get_attr("RTA_PREFSRC")),
                     None)
        if local is None:
            raise BackendUnavailable(f"the frontend has no route to the host at {address}")
        used = {vni for _, vni in tunnels.values()}
        vni = int(hashlib.sha256(name.encode()).hexdigest(), 16) % (VNI_SPACE - 1) + 1
        while vni in used:
            vni = vni % (VNI_SPACE - 1) + 1
        ip.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_local=local,
                vxlan_group=address, vxlan_port=PORT)
        [index] = ip.link_lookup(ifname=name)
        ip.link("set", index=index, master=bridge_index, state="up")
        ip.brport("set", index=index, mode=1)  # hairpin: back to the host it came from
        log.info("network bridge %s reaches %s through %s (VXLAN %d)", bridge, address, name,
                 vni)
        return local, vni

    def _on(self, host: ssh.Target, script: str, *args: str) -> bool:
        """Run `script` on the host with `args` (quoted by sh as positional
        parameters, never spliced into the script); False when it says the
        bridge is still used."""
        command = ["ssh", *ssh.ssh_options(self.data_path), *host.login, "--",
                   ssh.remote_command(["sh", "-c", script, "sh", *args])]
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=ssh.SSH_SECONDS * 2, check=False)
        except subprocess.TimeoutExpired:
            raise BackendUnavailable(f"{host} did not answer over SSH") from None
        if result.returncode == STILL_USED and script is RETRACT:
            return False
        if result.returncode == 255:
            raise BackendUnavailable(f"{host} is not reachable over SSH: "
                                     f"{result.stderr.strip()}")
        if result.returncode != 0:
            raise BackendFailure(f"the network could not be set up on {host}: "
                                 f"{result.stderr.strip() or result.returncode}")
        return True

    @contextmanager
    def _ip(self) -> Any:
        try:
            with self.netlink() as ip:
                yield ip
        except (NetlinkError, OSError) as exc:
            raise BackendFailure(f"netlink refused: {exc}") from None


def _digest(bridge: str, address: str) -> str:
    return hashlib.sha256(f"{bridge} {address}".encode()).hexdigest()[:13]


def _frontend_tunnel(bridge: str, address: str) -> str:
    return "ox" + _digest(bridge, address)


def _host_tunnel(bridge: str) -> str:
    return "ox" + bridge.removeprefix("ob")


def _tunnels(ip: Any) -> dict[str, tuple[str, int]]:
    """The frontend's VXLAN tunnels: name -> (local address, VNI)."""
    found = {}
    for link in ip.get_links():
        info = link.get_attr("IFLA_LINKINFO")
        if info is None or info.get_attr("IFLA_INFO_KIND") != "vxlan":
            continue
        data = info.get_attr("IFLA_INFO_DATA")
        found[link.get_attr("IFLA_IFNAME")] = (data.get_attr("IFLA_VXLAN_LOCAL"),
                                               data.get_attr("IFLA_VXLAN_ID"))
    return found

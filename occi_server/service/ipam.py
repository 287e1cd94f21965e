"""IP address choice for interfaces on an IP network."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from occi_server.errors import Conflict


def choose_address(cidr: str, gateway: str | None, taken: Iterable[str],
                   requested: str | None) -> str:
    """The requested address if it is free and inside the network, else the
    lowest free host address. Never the network, broadcast or gateway address."""
    network = ipaddress.ip_network(cidr)
    reserved = {str(a) for a in taken}
    if gateway:
        reserved.add(gateway)
    if requested:
        address = ipaddress.ip_address(requested)
        if address not in network:
            raise Conflict(f"address {requested} is outside the network {cidr}")
        if network.num_addresses > 2 and address in (network.network_address,
                                                    network.broadcast_address):
            raise Conflict(f"address {requested} is the network or broadcast address of {cidr}")
        if requested in reserved:
            raise Conflict(f"address {requested} is already in use on {cidr}")
        return requested
    for host in network.hosts():
        if str(host) not in reserved:
            return str(host)
    raise Conflict(f"no free address left in {cidr}")

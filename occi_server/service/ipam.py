"""IP address choice for interfaces on an IP network."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Iterator

from occi_server.errors import BadRequest, Conflict


def choose_address(cidr: str, gateway: str | None, taken: Iterable[str],
                   requested: str | None) -> str:
    """The requested address if it is free and inside the network, else the
    lowest free host address. Never the network, broadcast or gateway address."""
    network = ipaddress.ip_network(cidr)
    if requested:
        reserved = {str(a) for a in taken} | ({gateway} if gateway else set())
        address = ipaddress.ip_address(requested)
        if address not in network:
            raise Conflict(f"address {requested} is outside the network {cidr}")
        if network.num_addresses > 2 and address in (network.network_address,
                                                    network.broadcast_address):
            raise Conflict(f"address {requested} is the network or broadcast address of {cidr}")
        if requested in reserved:
            raise Conflict(f"address {requested} is already in use on {cidr}")
        return requested
    assert isinstance(network, ipaddress.IPv4Network)  # check_network admits IPv4 alone
    for address in free_addresses(network, [*taken, *([gateway] if gateway else [])]):
        return address
    raise Conflict(f"no free address left in {cidr}")


def free_addresses(network: ipaddress.IPv4Network, taken: Iterable[str]) -> Iterator[str]:
    """The network's host addresses (a /31's or /32's: every one) not in
    `taken`, lowest first. Addresses are compared as numbers: an address
    object made of every host up to the first free one cost a create on a
    network of thousands of interfaces milliseconds more per thousand, with
    the store's write lock held (bench_addresses.py)."""
    numbers = {int.from_bytes(socket.inet_aton(address), "big") for address in taken}
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.prefixlen < 31:
        first, last = first + 1, last - 1
    for number in range(first, last + 1):
        if number not in numbers:
            yield socket.inet_ntoa(number.to_bytes(4, "big"))


def check_network(cidr: str | None, gateway: str | None,
                  others: Iterable[tuple[str | None, str]]) -> None:
    """An IP network the site can serve: IPv4, room for hosts, the gateway one
    of its host addresses, no overlap with `others` ((location, CIDR) pairs; a
    location of None is a network the caller may not see, named by neither)."""
    if not cidr:
        if gateway:
            raise BadRequest("occi.network.gateway needs occi.network.address (the CIDR)")
        return
    network = ipaddress.ip_network(cidr)  # the model checked its syntax
    if network.version != 4:
        raise BadRequest(f"{cidr} is IPv6; networks here are IPv4 (DHCPv4 and NAT44)")
    if network.prefixlen > 30:
        raise BadRequest(f"{cidr} leaves no room for guests; use a prefix of /30 or shorter")
    if gateway:
        address = ipaddress.ip_address(gateway)
        if address not in network or address in (network.network_address,
                                                 network.broadcast_address):
            raise BadRequest(f"gateway {gateway} is not a host address of {cidr}")
    for location, other in others:
        if network.overlaps(ipaddress.ip_network(other, strict=False)):
            if location is None:
                raise Conflict(f"{cidr} overlaps a network of this site; choose another range")
            raise Conflict(f"{cidr} overlaps {other} of {location}")

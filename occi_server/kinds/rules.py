"""The rules of a security group (occi.securitygroup.rules), as the clients of
rOCCI-server 2 and ooi sites send them: a list of objects with `type`
(inbound or outbound; ingress and egress as OpenStack says), `protocol` (tcp,
udp, icmp, or all when absent), `range` (a CIDR; everywhere when absent) and
`port` (tcp and udp: 22, "22", "1000-2000" or "1000:2000"; every port when
absent). ooi's `ipversion` is accepted when it agrees with the range. Stored
and rendered in one spelling."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

MAX_RULES = 100  # per group: each becomes a kernel rule on every interface of the group
DIRECTIONS = {"inbound": "inbound", "outbound": "outbound", "ingress": "inbound",
              "egress": "outbound"}
PROTOCOLS = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "all": "all", "any": "all"}
KEYS = ("type", "protocol", "range", "port", "ipversion")
_PORTS = re.compile(r"\s*(\d{1,5})\s*(?:[-:]\s*(\d{1,5})\s*)?")


@dataclass(frozen=True)
class Rule:
    """Traffic a security group lets through: `inbound` to its computes' interfaces
    from `cidr`, or `outbound` from them to `cidr`; `protocol` tcp, udp, icmp or
    all; `ports` (first, last) for tcp and udp, None for every port."""

    direction: str
    protocol: str
    cidr: str
    ports: tuple[int, int] | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.cidr).version

    @property
    def port_range(self) -> str | None:
        """The ports as "22" or "1000-2000" (the attribute and nftables write them so)."""
        if self.ports is None:
            return None
        first, last = self.ports
        return str(first) if first == last else f"{first}-{last}"

    def rendered(self) -> dict[str, str]:
        """The rule as occi.securitygroup.rules holds it."""
        found = {"type": self.direction, "protocol": self.protocol, "range": self.cidr}
        if self.port_range is not None:
            found["port"] = self.port_range
        return found


def parse_rules(value: Any) -> list[Rule]:
    """The rules a client gave; ValueError saying which rule is wrong and how."""
    if not isinstance(value, list):
        raise ValueError("occi.securitygroup.rules must be a list of rules")
    if len(value) > MAX_RULES:
        raise ValueError(f"a security group holds at most {MAX_RULES} rules, not {len(value)}")
    rules = []
    for number, given in enumerate(value, start=1):
        try:
            rule = parse_rule(given)
        except ValueError as exc:
            raise ValueError(f"occi.securitygroup.rules, rule {number}: {exc}") from None
        if rule not in rules:
            rules.append(rule)
    return rules


def parse_rule(given: Any) -> Rule:
    if not isinstance(given, dict):
        raise ValueError('a rule is an object such as {"type": "inbound", "protocol": "tcp", '
                         '"range": "0.0.0.0/0", "port": "22"}')
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; a rule has {', '.join(KEYS)}")
    direction = DIRECTIONS.get(str(given.get("type", "")).lower())
    if direction is None:
        raise ValueError(f"type must be inbound or outbound, not {given.get('type')!r}")
    protocol_given = given.get("protocol")
    protocol = "all" if protocol_given in (None, "") else \
        PROTOCOLS.get(str(protocol_given).lower())
    if protocol is None:
        raise ValueError(f"protocol must be tcp, udp, icmp or all, not {protocol_given!r}")
    cidr = _cidr(given.get("range"), given.get("ipversion"))
    return Rule(direction, protocol, cidr, _ports(given.get("port"), protocol))


def _cidr(given: Any, version: Any) -> str:
    if given in (None, ""):
        given = "::/0" if str(version).lower() == "ipv6" else "0.0.0.0/0"
    try:
        network = ipaddress.ip_network(str(given).strip(), strict=False)
    except ValueError:
        raise ValueError(f"range must be a CIDR such as 192.0.2.0/24, not {given!r}") from None
    if version not in (None, "") and str(version).lower() != f"ipv{network.version}":
        raise ValueError(f"ipversion {version!r} does not match the range {network}")
    return str(network)


def _ports(given: Any, protocol: str) -> tuple[int, int] | None:
    if given in (None, ""):
        return None
    if protocol not in ("tcp", "udp"):
        raise ValueError(f"a port applies to tcp and udp, not to {protocol}")
    if isinstance(given, bool) or not isinstance(given, int | str):
        raise ValueError(f"port must be a number or a range such as 1000-2000, not {given!r}")
    found = _PORTS.fullmatch(str(given))
    if found is None:
        raise ValueError(f"port must be a number or a range such as 1000-2000, not {given!r}")
    first = int(found.group(1))
    last = int(found.group(2) or first)
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"ports run from 1 to 65535, the first not above the last: {given!r}")
    return first, last

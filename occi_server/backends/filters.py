"""Security group rules as nftables rules on the host's bridges, one table per
network interface (`bridge occi_f<key>`, named from the interface's key),
replaced whole in one nft transaction: applying it again changes nothing, and
removing the table removes every rule of the interface.

The interface is matched by its MAC (unicast frames to and from the guest;
broadcasts, ARP among them, pass), on the bridge's forward hook (from other
ports: guests, the uplink's VLAN port), output hook (from the host: routed
and NATed traffic, DHCP and DNS) and input hook (from the guest to the host).
The bridge family has no connection tracking on these kernels (`ct` in a
bridge table is refused), so:
- traffic the host routes or answers is tracked in the inet family, which
  marks replies (`inet occi_replies`); marked frames reach the guest whatever
  its rules, as replies to what it sent;
- between ports of a bridge, inbound means new connection attempts: TCP SYN
  without ACK, ICMP echo requests, and UDP by its rules (with the replies to
  what an outbound UDP rule lets out). Other TCP segments and ICMP errors and
  replies pass, as replies to connections the rules allowed.
Values in the rules are normalised (integers, CIDRs from ipaddress, a MAC
checked by its format), never client text."""

from __future__ import annotations

import re
from collections.abc import Sequence

from occi_server.backends.base import Rule
from occi_server.backends.nft import emptied, run
from occi_server.errors import BackendFailure

PREFIX = "occi_f"
REPLIES = "occi_replies"
REPLY_MARK = 0x00100000  # the bit that says "a reply the host's conntrack saw"
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_KEY = re.compile(r"[0-9a-f]{12}")
_ICMP_REPLIES = "{ echo-reply, destination-unreachable, time-exceeded, parameter-problem }"
_ICMPV6_ALWAYS = ("{ echo-reply, destination-unreachable, packet-too-big, time-exceeded, "
                  "parameter-problem, nd-neighbor-solicit, nd-neighbor-advert, "
                  "nd-router-advert }")


def table(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BackendFailure(f"{key!r} is not an interface key of this server")
    return PREFIX + key


def _peer(rule: Rule, towards_guest: bool) -> str:
    """The rule's range as the other end of the guest's traffic."""
    family = "ip" if rule.version == 4 else "ip6"
    return f"{family} {'saddr' if towards_guest else 'daddr'} {rule.cidr}"


def _match(rule: Rule, towards_guest: bool) -> str:
    """What a rule lets in (towards the guest: from its range to the guest's
    ports) or out (from the guest to its range and ports)."""
    peer = _peer(rule, towards_guest)
    if rule.protocol == "all":
        return f"{peer} accept"
    if rule.protocol == "icmp":
        return f"{peer} meta l4proto {'icmp' if rule.version == 4 else 'ipv6-icmp'} accept"
    if rule.port_range is None:
        return f"{peer} meta l4proto {rule.protocol} accept"
    return f"{peer} {rule.protocol} dport {rule.port_range} accept"


def _udp_replies(rules: Sequence[Rule], towards_guest: bool) -> list[str]:
    """Replies to what UDP rules of the other direction let through: from the
    rule's ports and range (stateless, as the bridge family has to be)."""
    return [f"{_peer(rule, towards_guest)} meta l4proto udp accept"
            if rule.protocol == "all" or rule.port_range is None else
            f"{_peer(rule, towards_guest)} udp sport {rule.port_range} accept"
            for rule in rules if rule.protocol in ("udp", "all")]


def _chain(name: str, rules: Sequence[Rule], replies: Sequence[Rule],
           towards_guest: bool) -> str:
    lines = [
        "ether type arp accept",
        # Not a new connection: a reply, or a segment of one the rules let open.
        "meta l4proto tcp tcp flags & (syn | ack) != syn accept",
        f"icmp type {_ICMP_REPLIES} accept",
        f"icmpv6 type {_ICMPV6_ALWAYS} accept",
        *([] if towards_guest else ["udp sport 68 udp dport 67 accept"]),  # DHCP requests
        *(_match(rule, towards_guest) for rule in rules),
        *_udp_replies(replies, towards_guest),
        "drop",
    ]
    body = "".join(f"    {line}\n" for line in lines)
    return f"  chain {name} {{\n{body}  }}\n"


def ruleset(key: str, mac: str, rules: Sequence[Rule]) -> str:
    """The nft script that gives the interface `key` (MAC `mac`) its filter."""
    if not _MAC.fullmatch(mac):
        raise BackendFailure(f"{mac!r} is not a MAC address")
    name = table(key)
    inbound = [rule for rule in rules if rule.direction == "inbound"]
    outbound = [rule for rule in rules if rule.direction == "outbound"]
    script = emptied("bridge", name) + f"table bridge {name} {{\n"
    script += _chain("to_guest", inbound, outbound, towards_guest=True)
    guest_out = ""
    if outbound:  # without outbound rules the guest sends what it likes
        script += _chain("from_guest", outbound, inbound, towards_guest=False)
        guest_out = f"    ether saddr {mac} jump from_guest\n"
    script += (
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
        f"    ether daddr {mac} jump to_guest\n{guest_out}  }}\n"
        "  chain output {\n    type filter hook output priority filter; policy accept;\n"
        f"    ether daddr {mac} meta mark & {REPLY_MARK:#x} == {REPLY_MARK:#x} accept\n"
        f"    ether daddr {mac} udp sport 67 udp dport 68 accept\n"
        f"    ether daddr {mac} jump to_guest\n  }}\n")
    if outbound:
        script += ("  chain input {\n    type filter hook input priority filter; "
                   f"policy accept;\n{guest_out}  }}\n")
    return _replies() + script + "}\n"


def _replies() -> str:
    """The inet table that marks what the host's conntrack knows as replies."""
    mark = f"ct state established,related meta mark set meta mark | {REPLY_MARK:#x}"
    return (emptied("inet", REPLIES) + f"table inet {REPLIES} {{\n"
            "  chain forward {\n    type filter hook forward priority filter - 1; "
            f"policy accept;\n    {mark}\n  }}\n"
            "  chain output {\n    type filter hook output priority filter - 1; "
            f"policy accept;\n    {mark}\n  }}\n}}\n")


class Filters:
    def __init__(self, enter: Sequence[str] = ()) -> None:
        """`enter` prefixes each command (nsenter into the network namespace)."""
        self.enter = list(enter)

    def _nft(self, *args: str, script: str | None = None) -> str:
        return run(self.enter, ["nft", *args], script)

    def apply(self, key: str, mac: str, rules: Sequence[Rule]) -> None:
        self._nft("-f", "-", script=ruleset(key, mac, rules))

    def remove(self, key: str) -> None:
        self._nft("-f", "-", script=emptied("bridge", table(key)))

    def present(self) -> set[str]:
        """Keys of the interfaces whose tables exist."""
        return {name.removeprefix(PREFIX) for line in self._nft("list", "tables").splitlines()
                if line.startswith("table bridge ") and (name := line.split()[2]).startswith(
                    PREFIX)}

"""The nftables script an interface's filter is made of (its command boundary;
tests/integration/test_security_groups.py sends real traffic through it)."""

from __future__ import annotations

import pytest

from occi_server.backends.filters import ruleset
from occi_server.errors import BackendFailure
from occi_server.kinds.rules import Rule

MAC = "52:54:00:aa:bb:cc"


def lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines()]


def chain(script: list[str], name: str) -> list[str]:
    start = script.index(f"chain {name} {{") + 1
    return script[start:script.index("}", start)]


def test_inbound_rules_allow_new_connections_and_the_rest_is_dropped() -> None:
    script = lines(ruleset("0123456789ab", MAC, [
        Rule("inbound", "tcp", "0.0.0.0/0", (22, 22)), Rule("inbound", "icmp", "10.0.0.0/8"),
        Rule("inbound", "udp", "2001:db8::/32", (5000, 5010))]))
    to_guest = chain(script, "to_guest")
    assert to_guest[-1] == "drop"
    assert "ip saddr 0.0.0.0/0 tcp dport 22 accept" in to_guest
    assert "ip saddr 10.0.0.0/8 meta l4proto icmp accept" in to_guest
    assert "ip6 saddr 2001:db8::/32 udp dport 5000-5010 accept" in to_guest
    assert "meta l4proto tcp tcp flags & (syn | ack) != syn accept" in to_guest
    assert f"ether daddr {MAC} jump to_guest" in script
    assert "chain from_guest {" not in script  # no outbound rule: the guest sends freely
    assert "table inet occi_replies {" in script  # replies the host tracks reach the guest


def test_outbound_rules_filter_what_the_guest_sends_with_replies_to_udp() -> None:
    script = lines(ruleset("0123456789ab", MAC, [
        Rule("outbound", "udp", "10.0.0.0/8", (53, 53)),
        Rule("inbound", "udp", "0.0.0.0/0", (69, 69))]))
    from_guest = chain(script, "from_guest")
    assert "ip daddr 10.0.0.0/8 udp dport 53 accept" in from_guest
    assert "ip daddr 0.0.0.0/0 udp sport 69 accept" in from_guest  # answers to inbound tftp
    assert "udp sport 68 udp dport 67 accept" in from_guest  # DHCP always
    assert "ip saddr 10.0.0.0/8 udp sport 53 accept" in script  # answers to its DNS queries
    assert f"ether saddr {MAC} jump from_guest" in script


def test_names_and_addresses_come_from_the_server_only() -> None:
    for key, mac in (("../etc", MAC), ("0123456789ab", '52:54:00:aa:bb:cc" accept')):
        with pytest.raises(BackendFailure):
            ruleset(key, mac, [])

"""Masquerading of public networks to the site's uplink with nftables: one
table per network, replaced whole in one nft transaction, so applying the
rules again (after a restart) changes nothing, and removing the table removes
every rule of the network. A reserved public address is a table of its own
(1:1 NAT to one guest) and the address on the uplink, so that the uplink's
neighbours find it."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

from occi_server.backends.nft import emptied, run


class Nat:
    def __init__(self, uplink: str, enter: Sequence[str] = ()) -> None:
        """`uplink` is a validated interface name; `enter` prefixes each command
        (nsenter into the network namespace)."""
        self.uplink = uplink
        self.enter = list(enter)

    def _run(self, args: Sequence[str], script: str | None = None) -> str:
        return run(self.enter, args, script)

    @staticmethod
    def table(bridge: str) -> str:
        return f"occi_{bridge}"

    def ruleset(self, bridge: str, cidr: str) -> str:
        network = ipaddress.IPv4Network(cidr)
        table = self.table(bridge)
        return (emptied("ip", table) +
                f"table ip {table} {{\n"
                f"  chain postrouting {{\n"
                f"    type nat hook postrouting priority srcnat; policy accept;\n"
                f'    ip saddr {network} oifname "{self.uplink}" masquerade\n'
                f"  }}\n"
                f"  chain forward {{\n"
                f"    type filter hook forward priority filter; policy accept;\n"
                f'    iifname "{bridge}" oifname "{self.uplink}" accept\n'
                f'    iifname "{self.uplink}" oifname "{bridge}" ct state established,related '
                f"accept\n"
                # To a guest's reserved address (its security groups still filter it).
                f'    iifname "{self.uplink}" oifname "{bridge}" ct status dnat accept\n'
                f'    oifname "{bridge}" drop\n'
                f"  }}\n"
                f"}}\n")

    def apply(self, bridge: str, cidr: str) -> None:
        self._run(["nft", "-f", "-"], self.ruleset(bridge, cidr))
        self._run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    def remove(self, bridge: str) -> None:
        table = self.table(bridge)
        self._run(["nft", "-f", "-"], emptied("ip", table))

    @staticmethod
    def reservation_table(key: str) -> str:
        return f"occi_p{key}"

    def publish(self, key: str, public: str, private: str) -> None:
        """`public` (an IPv4 address, on the uplink) leads to `private` and back."""
        outside, inside = ipaddress.IPv4Address(public), ipaddress.IPv4Address(private)
        table = self.reservation_table(key)
        self._run(["nft", "-f", "-"], (
            emptied("ip", table) + f"table ip {table} {{\n"
            "  chain prerouting {\n    type nat hook prerouting priority dstnat; "
            f"policy accept;\n    ip daddr {outside} dnat to {inside}\n  }}\n"
            "  chain output {\n    type nat hook output priority -100; "
            f"policy accept;\n    ip daddr {outside} dnat to {inside}\n  }}\n"
            # Before the network's masquerade: the guest's traffic leaves from its address.
            "  chain postrouting {\n    type nat hook postrouting priority srcnat - 1; "
            f'policy accept;\n    ip saddr {inside} oifname "{self.uplink}" snat to {outside}\n'
            "  }\n}\n"))
        self._run(["ip", "-4", "addr", "replace", f"{outside}/32", "dev", self.uplink])
        self._run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    def unpublish(self, key: str, public: str) -> None:
        table = self.reservation_table(key)
        self._run(["nft", "-f", "-"], emptied("ip", table))
        outside = ipaddress.IPv4Address(public)
        if f" {outside}/32 " in self._run(["ip", "-4", "-o", "addr", "show", "dev",
                                           self.uplink]):
            self._run(["ip", "-4", "addr", "del", f"{outside}/32", "dev", self.uplink])

    def published(self) -> dict[str, str]:
        """Reservation key -> public address, read from the reservations' tables."""
        found = {}
        for item in json.loads(self._run(["nft", "-j", "list", "ruleset"]))["nftables"]:
            rule = item.get("rule", {})
            table, chain = str(rule.get("table", "")), rule.get("chain")
            if rule.get("family") != "ip" or not table.startswith("occi_p") \
                    or chain != "prerouting":
                continue
            for expression in rule.get("expr", []):
                match = expression.get("match", {})
                if match.get("left", {}).get("payload", {}).get("field") == "daddr":
                    found[table.removeprefix("occi_p")] = str(match.get("right"))
        return found

    def present(self, bridge: str) -> bool:
        return f"table ip {self.table(bridge)}" in self._run(["nft", "list", "tables"])

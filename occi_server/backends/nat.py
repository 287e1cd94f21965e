"""Masquerading of public networks to the site's uplink with nftables: one
table per network, replaced whole in one nft transaction, so applying the
rules again (after a restart) changes nothing, and removing the table removes
every rule of the network."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Sequence

from occi_server.errors import BackendFailure, BackendUnavailable


class Nat:
    def __init__(self, uplink: str, enter: Sequence[str] = ()) -> None:
        """`uplink` is a validated interface name; `enter` prefixes each command
        (nsenter into the network namespace)."""
        self.uplink = uplink
        self.enter = list(enter)

    def _run(self, args: Sequence[str], script: str | None = None) -> str:
        try:
            result = subprocess.run([*self.enter, *args], input=script, capture_output=True,
                                    text=True, timeout=30)
        except FileNotFoundError:
            raise BackendUnavailable(f"{args[0]} is not installed (apt-get install nftables)") \
                from None
        if result.returncode != 0:
            raise BackendFailure(f"{args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    @staticmethod
    def table(bridge: str) -> str:
        return f"occi_{bridge}"

    def ruleset(self, bridge: str, cidr: str) -> str:
        network = ipaddress.IPv4Network(cidr)
        table = self.table(bridge)
        # "add" then "delete" makes the replacement work whether or not the table exists.
        return (f"add table ip {table}\n"
                f"delete table ip {table}\n"
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
                f'    oifname "{bridge}" drop\n'
                f"  }}\n"
                f"}}\n")

    def apply(self, bridge: str, cidr: str) -> None:
        self._run(["nft", "-f", "-"], self.ruleset(bridge, cidr))
        self._run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])

    def remove(self, bridge: str) -> None:
        table = self.table(bridge)
        self._run(["nft", "-f", "-"], f"add table ip {table}\ndelete table ip {table}\n")

    def present(self, bridge: str) -> bool:
        return f"table ip {self.table(bridge)}" in self._run(["nft", "list", "tables"])

"""Network namespaces for the network tests: one plays the host (the service's
bridges, DHCP servers and nftables rules live there, with a dummy uplink),
another a guest or a client on a bridge. No packet leaves them."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=60)


@dataclass
class Namespaces:
    host: str
    guest: str


def made_namespaces() -> Iterator[Namespaces]:
    suffix = uuid.uuid4().hex[:6]
    spaces = Namespaces(f"occi-host-{suffix}", f"occi-guest-{suffix}")
    try:
        for name in (spaces.host, spaces.guest):
            run("ip", "netns", "add", name)
        # The uplink: one end of a veth pair whose other end stays in the namespace.
        run("ip", "-n", spaces.host, "link", "add", "uplink0", "type", "veth", "peer", "name",
            "outside0")
        run("ip", "-n", spaces.host, "link", "set", "uplink0", "up")
        yield spaces
    finally:
        for name in (spaces.host, spaces.guest):
            for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                os.kill(int(pid), signal.SIGKILL)  # dnsmasq servers, guests of a failed test
            run("ip", "netns", "del", name, check=False)

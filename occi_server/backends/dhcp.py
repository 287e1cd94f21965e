"""One dnsmasq per network with dynamic allocation, bound only to its bridge,
answering only the interfaces the service knows (static DHCP: a fixed
MAC-to-address entry each, no free pool), with no DNS.

Each server's files live in <networks_dir>/<bridge>/: dnsmasq.conf, hosts
(re-read on SIGHUP, so entries change live), leases and the pid file. Servers
outlive the service; a restart adopts them through their pid files."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from occi_server.backends.locks import file_lock
from occi_server.errors import BackendFailure, BackendUnavailable

log = logging.getLogger("occi_server.dhcp")
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
LEASE_TIME = "12h"


class DhcpServers:
    def __init__(self, directory: Path, enter: Sequence[str] = ()) -> None:
        """`enter` prefixes each command (nsenter into the network namespace)."""
        self.directory = directory
        self.enter = list(enter)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)  # dnsmasq re-reads the hosts file as an unprivileged user

    def _dir(self, bridge: str) -> Path:
        return self.directory / bridge

    def _pid(self, bridge: str) -> int | None:
        """The pid of the bridge's dnsmasq if it runs (checked against its command line)."""
        try:
            pid = int((self._dir(bridge) / "dnsmasq.pid").read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        conf = str(self._dir(bridge) / "dnsmasq.conf").encode()
        return pid if conf in command else None  # not a reused pid

    def served(self) -> list[str]:
        """The bridges that have a DHCP server configured."""
        return sorted(path.parent.name for path in self.directory.glob("*/dnsmasq.conf"))

    def running(self, bridge: str) -> bool:
        return self._pid(bridge) is not None

    def start(self, bridge: str, cidr: str, gateway: str | None) -> None:
        """Serve `cidr` on `bridge` (idempotent: a running server is kept)."""
        network = ipaddress.IPv4Network(cidr)
        directory = self._dir(bridge)
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)
        hosts = directory / "hosts"
        if not hosts.exists():
            self._write(hosts, "")
        lines = [
            f"interface={bridge}", "bind-interfaces", "except-interface=lo",
            "port=0",  # no DNS
            f"dhcp-range={network.network_address},static,{network.netmask},{LEASE_TIME}",
            f"dhcp-hostsfile={hosts}", f"dhcp-leasefile={directory / 'leases'}",
            f"pid-file={directory / 'dnsmasq.pid'}", "dhcp-authoritative",
            "user=nobody", "group=nogroup",
        ]
        if gateway:
            lines.append(f"dhcp-option=option:router,{ipaddress.IPv4Address(gateway)}")
        else:
            lines.append("dhcp-option=option:router")  # no default route offered
        self._write(directory / "dnsmasq.conf", "\n".join(lines) + "\n")
        if self.running(bridge):
            return
        self._spawn(bridge)

    def _spawn(self, bridge: str) -> None:
        conf = self._dir(bridge) / "dnsmasq.conf"
        try:
            subprocess.run([*self.enter, "dnsmasq", f"--conf-file={conf}"], check=True,
                           capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            raise BackendUnavailable("dnsmasq is not installed (apt-get install dnsmasq-base)") \
                from None
        except subprocess.CalledProcessError as exc:
            raise BackendFailure(f"dnsmasq did not start on {bridge}: "
                                 f"{(exc.stderr or exc.stdout).strip()}") from None

    def heal(self, bridge: str) -> bool:
        """Start the server again if it died; True when it had to."""
        if self.running(bridge) or not (self._dir(bridge) / "dnsmasq.conf").exists():
            return False
        log.warning("the DHCP server of %s had stopped; starting it again", bridge)
        self._spawn(bridge)
        return True

    def stop(self, bridge: str) -> None:
        """Stop the server and forget its files (idempotent)."""
        pid = self._pid(bridge)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self._pid(bridge) == pid and time.monotonic() < deadline:
                time.sleep(0.02)
        directory = self._dir(bridge)
        if directory.is_dir():
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()

    def hosts(self, bridge: str) -> dict[str, str]:
        """MAC -> address entries the server answers."""
        path = self._dir(bridge) / "hosts"
        if not path.exists():
            return {}
        return dict(line.split(",", 1) for line in path.read_text().splitlines() if line)

    def _editing(self, bridge: str) -> AbstractContextManager[None]:
        """One change of a bridge's hosts file at a time, across threads and processes."""
        return file_lock(self.directory / f".{bridge}.lock")

    def set_host(self, bridge: str, mac: str, address: str) -> None:
        mac = mac.lower()
        if not MAC.fullmatch(mac):
            raise BackendFailure(f"{mac!r} is not a MAC address")
        with self._editing(bridge):
            entries = self.hosts(bridge)
            entries[mac] = str(ipaddress.IPv4Address(address))
            self._store_hosts(bridge, entries)

    def remove_host(self, bridge: str, mac: str) -> None:
        """Forget an interface and end its lease, so that its address can go to
        another interface at once (dnsmasq keeps a leased address otherwise)."""
        with self._editing(bridge):
            entries = self.hosts(bridge)
            address = entries.pop(mac.lower(), None)
            if address is None:
                return
            self._store_hosts(bridge, entries)
        if self.running(bridge):
            self._release(bridge, address, mac.lower())

    def _release(self, bridge: str, address: str, mac: str) -> None:
        # dhcp_release (dnsmasq-utils) tells the server on the bridge, as the client would.
        try:
            subprocess.run([*self.enter, "dhcp_release", bridge, address, mac], check=True,
                           capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            raise BackendUnavailable("dhcp_release is not installed "
                                     "(apt-get install dnsmasq-utils)") from None
        except subprocess.CalledProcessError as exc:
            log.warning("the lease of %s on %s was not released: %s", address, bridge,
                        exc.stderr.strip())

    def _store_hosts(self, bridge: str, entries: dict[str, str]) -> None:
        self._write(self._dir(bridge) / "hosts",
                    "".join(f"{mac},{address}\n" for mac, address in sorted(entries.items())))
        pid = self._pid(bridge)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # dnsmasq re-reads dhcp-hostsfile

    @staticmethod
    def _write(path: Path, text: str) -> None:
        """Replace a file at once, so dnsmasq never reads half of it."""
        partial = path.with_name(path.name + ".new")
        partial.write_text(text)
        partial.chmod(0o644)
        partial.replace(path)

"""The real tiny guest on a network of the bridge backend: QEMU on a tap in the
host namespace, on the network's bridge, with the MAC the API chose for its
interface; booted until it took its lease and listens (TCP 8080 and 8081)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from occi_server.backends.bridge import bridge_name
from tests.conftest import NETWORKINTERFACE, Client
from tests.support.libvirt import tiny_images
from tests.support.netns import Namespaces, run


def unavailable_reason() -> str | None:
    """Why the tiny guest cannot run on a bridge here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for command in ("ip", "dnsmasq", "nft", "busybox", "qemu-system-x86_64"):
        if shutil.which(command) is None:
            return f"{command} is not installed (scripts/setup.sh installs it)"
    return None


@contextmanager
def tiny_guest(client: Client, spaces: Namespaces, network: str, console: Path
               ) -> Iterator[dict]:
    """The guest's compute, interface (path and attributes), address and interface key."""
    images, compute = tiny_images(), client.compute()
    path = client.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                         f'X-OCCI-Attribute: occi.core.target="{network}"')
    nic = {"path": path, **client.attributes(path)}
    run("ip", "-n", spaces.host, "tuntap", "add", "dev", "tapguest0", "mode", "tap")
    run("ip", "-n", spaces.host, "link", "set", "tapguest0", "master",
        bridge_name(client.stored(network)), "up")
    process = subprocess.Popen([
        "ip", "netns", "exec", spaces.host, "qemu-system-x86_64", "-accel", "tcg",
        "-m", "256", "-display", "none", "-nodefaults", "-no-reboot",
        "-serial", f"file:{console}", "-kernel", str(images / "tiny-vmlinuz"),
        "-initrd", str(images / "tiny-initrd.gz"),
        "-append", "console=ttyS0 panic=-1 loglevel=4",
        "-drive", f"file={images / 'tiny.raw'},if=virtio,format=raw,readonly=on",
        "-netdev", "tap,id=net0,ifname=tapguest0,script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={nic['occi.networkinterface.mac']}"])
    try:
        deadline, text = time.monotonic() + 180, ""
        while time.monotonic() < deadline and "occi-tiny: ready" not in text:
            time.sleep(0.2)
            text = console.read_text(errors="replace") if console.exists() else ""
        address = nic["occi.networkinterface.address"]
        assert f"occi-tiny: lease eth0 {address}/" in text, text[-2000:]
        yield {"compute": compute, "nic": nic, "address": address, "key": client.key(path)}
    finally:
        process.kill()
        process.wait()


def connects(spaces: Namespaces, address: str, port: int) -> bool:
    """Whether a TCP connection from the test's other namespace reaches the guest's port."""
    result = run("ip", "netns", "exec", spaces.guest, "busybox", "nc", "-w", "2", address,
                 str(port), check=False)
    return f"occi-tiny: port {port}" in result.stdout


def pings(spaces: Namespaces, address: str) -> bool:
    """Whether an echo request is answered within 4 s (one a second until one is:
    a neighbour entry that failed a moment ago needs another try)."""
    return run("ip", "netns", "exec", spaces.guest, "busybox", "ping", "-c", "1", "-w", "4",
               address, check=False).returncode == 0

"""A site of two real hypervisor hosts, the second reached over SSH.

Each host is a network namespace of its own (tests/support/nshost.py) with
its own libvirt daemon; the second also runs an sshd, and the two are linked
by a veth pair. The frontend (`occi-server serve` and the operator's `host`
commands) runs on the first. The operator adds the second host with its host
key pinned and the site's key let in; guests booted through OCCI are spread
over both hosts, a drained host takes no new guest, a frozen one (its libvirt
daemon stopped with SIGSTOP) neither hangs the service nor loses its guests,
and a host with guests cannot be removed."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.config import load_config
from occi_server.store import Store
from tests.conftest import (
    COMPUTE,
    COMPUTE_ACTION,
    INFRA,
    IPNETWORK,
    NETWORK,
    SITE,
    STORAGE,
    STORAGELINK,
    category,
)
from tests.support import nshost
from tests.support.libvirt import link_images, reachable_dir
from tests.support.libvirt import unavailable_reason as libvirt_unavailable

REASON = nshost.unavailable_reason() or libvirt_unavailable() or (
    None if Path(nshost.SSHD).exists() else "sshd is not installed (scripts/setup.sh --test "
                                            "installs openssh-server)")
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

BIN = Path(sys.executable).parent
TINY = SITE + "os_tpl#tiny"
USER_DATA = "http://schemas.ogf.org/occi/infrastructure/compute#user_data"
SETTINGS = {"site_scheme": SITE, "accelerator": "tcg", "reconcile_seconds": "1",
            "shutdown_timeout": "10"}


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[nshost.NamespaceHost, nshost.NamespaceHost]]:
    front = nshost.NamespaceHost.start()
    try:
        second = nshost.NamespaceHost.start(tgt=False)
    except BaseException:
        front.stop()
        raise
    try:
        front.link(second, "10.231.7")
        yield front, second
    finally:
        second.stop()
        front.stop()


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    directory = reachable_dir("occi-sshhosts-")
    link_images(directory)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def host_command(front: nshost.NamespaceHost, data_dir: Path, *args: str,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
    """`occi-server host …` as the operator runs it on the frontend."""
    return front.exec(str(BIN / "occi-server"), "host", *args, "--data-dir", str(data_dir),
                      check=check, env=front.environment(**SETTINGS))


class Site:
    """The service's HTTP interface, reached with curl from inside the frontend."""

    def __init__(self, front: nshost.NamespaceHost, url: str, data_dir: Path) -> None:
        self.front, self.url = front, url
        self.store = Store(load_config(environ={}, data_dir=str(data_dir)).effective_database_url)

    def request(self, method: str, path: str, *lines: str) -> tuple[int, str]:
        command = ["curl", "-sS", "-X", method, "-H", "Accept: text/plain",
                   "-w", "\n%{http_code}", "--max-time", "60"]
        if lines:
            command += ["-H", "Content-Type: text/plain", "--data-binary", "\n".join(lines)]
        output = self.front.exec(*command, self.url + path, timeout=90).stdout
        body, _, status = output.rpartition("\n")
        return int(status), body

    def create(self, collection: str, *lines: str) -> str:
        status, body = self.request("POST", collection, *lines)
        assert status == 201, body
        return "/" + body.split("Location:")[-1].strip().split("/", 3)[3]

    def boot(self, *lines: str) -> str:
        return self.create("/compute/", category(COMPUTE, "kind"), category(TINY, "mixin"),
                           "X-OCCI-Attribute: occi.compute.memory=0.25", *lines)

    def links(self, path: str) -> list[dict]:
        output = self.front.exec("curl", "-sS", "-H", "Accept: application/occi+json",
                                 self.url + path).stdout
        return json.loads(output)["links"]

    def attribute(self, path: str, name: str) -> str:
        status, body = self.request("GET", path)
        assert status == 200, body
        return value_in(body, name)

    def until(self, path: str, name: str, wanted: str, seconds: float = 120) -> str:
        deadline, value = time.monotonic() + seconds, ""
        while time.monotonic() < deadline:
            value = self.attribute(path, name)
            if value == wanted:
                return value
            time.sleep(0.5)
        raise AssertionError(f"{path}: {name} is {value!r}, not {wanted!r}")

    def key(self, path: str) -> str:
        with self.store.transaction(write=False) as repo:
            entity = repo.by_location(path)
        assert entity is not None
        return entity.key

    def domain(self, path: str) -> str:
        return "occi-" + self.key(path)


def domains(host: nshost.NamespaceHost) -> set[str]:
    return set(nshost.run("virsh", "-c", host.libvirt_uri, "list", "--all", "--name"
                          ).stdout.split())


def guest_files(directory: Path) -> list[Path]:
    """What a host keeps for guests in `directory`, but its image cache and its mark."""
    return [path for path in directory.iterdir()
            if path.name != "images" and not path.name.endswith(".owner")]


def value_in(body: str, name: str) -> str:
    """Attribute `name`'s value in a text/plain rendering."""
    prefix = f"X-OCCI-Attribute: {name}="
    [value] = [line[len(prefix):].strip('"') for line in body.splitlines()
               if line.startswith(prefix)]
    return value


def secrets(host: nshost.NamespaceHost) -> str:
    return nshost.run("virsh", "-c", host.libvirt_uri, "secret-list").stdout


def test_a_second_host_over_ssh(hosts: tuple[nshost.NamespaceHost, nshost.NamespaceHost],
                                data_dir: Path) -> None:
    front, second = hosts
    # The second host shares no storage with the frontend: what its guests
    # boot from reaches it through libvirt.
    instances = second.own_directory(data_dir / "instances")
    fingerprint = second.start_sshd()
    target = f"root@{second.address}"

    # The host key is pinned: another fingerprint is refused, and nothing is kept.
    refused = host_command(front, data_dir, "add", target, "--host-key", "SHA256:" + "A" * 43,
                           check=False)
    assert refused.returncode == 2 and fingerprint in refused.stderr, refused.stderr
    # The site's key is not let in yet: the refusal says which line to add where.
    site_key = host_command(front, data_dir, "key").stdout.strip()
    refused = host_command(front, data_dir, "add", target, "--host-key", fingerprint,
                           check=False)
    assert refused.returncode == 2 and site_key in refused.stderr, refused.stderr
    assert "root@10.231.7.2" not in host_command(front, data_dir, "list").stdout
    second.authorized_keys.write_text(site_key + "\n")
    added = host_command(front, data_dir, "add", target, "--name", "hv2", "--host-key",
                         fingerprint)
    assert added.stdout.startswith("host hv2 added: 2 cores") or "cores" in added.stdout
    listed = host_command(front, data_dir, "list").stdout.splitlines()
    [line] = [line for line in listed if line.startswith("hv2\t")]
    assert "\troot@10.231.7.2\tactive (added)\t" in line
    memory_mib = int(nshost.run("virsh", "-c", second.libvirt_uri, "nodeinfo").stdout
                     .split("Memory size:")[1].split()[0]) // 1024
    assert f" cores, {memory_mib} MiB (" in line, line  # read from the host's libvirt

    # Volumes reach guests on either host over iSCSI, at the frontend's address.
    served = {**SETTINGS, "volume_access": "iscsi", "iscsi_portal": f"{front.address}:3260"}
    with front.serve(data_dir, **served) as url:
        site = Site(front, url, data_dir)
        first, other = site.boot(), site.boot()
        for path in (first, other):
            site.until(path, "occi.compute.state", "active")
        # One guest on each host: the one with the fewest guests takes the next.
        placed = {host.namespace: domains(host) & {site.domain(first), site.domain(other)}
                  for host in (front, second)}
        assert sorted(len(names) for names in placed.values()) == [1, 1], placed
        [remote] = [path for path in (first, other)
                    if site.domain(path) in placed[second.namespace]]
        deadline = time.monotonic() + 120  # it booted there
        while "occi-tiny: ready" not in site.request("GET", f"{remote}/console")[1]:
            assert time.monotonic() < deadline, "the guest on the second host did not boot"
            time.sleep(1)
        # From files of its own: the image's (kernel, initrd and disk) sent once
        # into its cache, its disk, seed and console log.
        key = site.key(remote)
        assert {path.name for path in instances.iterdir()
                if not path.name.endswith(".owner")} == {
            f"{key}.qcow2", f"{key}.seed.iso", f"{key}.console.log", "images"}
        cached = {path.name.partition("-")[2] for path in (instances / "images").iterdir()}
        assert cached == {"tiny.raw", "tiny-vmlinuz", "tiny-initrd.gz"}
        assert not (data_dir / "instances" / key).exists()

        # Drained, the second host takes no new guest (it would: it has fewer).
        host_command(front, data_dir, "drain", "hv2")
        assert "draining (added)" in host_command(front, data_dir, "list").stdout
        time.sleep(6)  # the service reads the hosts again every 5 s
        third = site.boot()
        site.until(third, "occi.compute.state", "active")
        assert site.domain(third) in domains(front)
        host_command(front, data_dir, "undrain", "hv2")

        # Frozen, it neither hangs the service nor loses its guest: a GET of its
        # guest answers within the bound on asking a hypervisor (5 s), whichever
        # worker takes it, while libvirt's keepalive and reopening take longer.
        second.freeze_libvirt()
        try:
            started = time.monotonic()
            messages, longest = [], 0.0
            while time.monotonic() - started < 20:
                asked = time.monotonic()
                status, body = site.request("GET", remote)
                longest = max(longest, time.monotonic() - asked)
                assert status == 200, body
                if value_in(body, "occi.compute.state") == "error":
                    messages.append(value_in(body, "occi.compute.state.message"))
                time.sleep(0.5)
            silent = ("does not answer", "stopped answering", "not reachable")
            assert messages and all(any(why in message for why in silent)
                                    for message in messages), messages
            assert longest < 15, f"a GET took {longest:.1f} s"
            assert site.attribute(first if remote == other else other,
                                  "occi.compute.state") == "active"
            time.sleep(6)
            fourth = site.boot()  # placed on the host that answers, within seconds
            site.until(fourth, "occi.compute.state", "active")
            assert site.domain(fourth) in domains(front)
            listed = host_command(front, data_dir, "list").stdout
            assert "does not answer" in listed or "not reachable" in listed, listed
        finally:
            second.freeze_libvirt(False)
        site.until(remote, "occi.compute.state", "active", seconds=60)
        assert site.domain(remote) in domains(second)

        # A network reaches a guest on the second host: its bridge there, a VXLAN
        # tunnel to the frontend's, the lease from the frontend's DHCP server,
        # and the security group enforced on the frontend's bridge.
        host_command(front, data_dir, "drain", front.libvirt_uri)
        network = site.create("/network/", category(NETWORK, "kind"),
                              category(IPNETWORK, "mixin"),
                              'X-OCCI-Attribute: occi.network.address="10.232.0.0/24"',
                              'X-OCCI-Attribute: occi.network.gateway="10.232.0.1"')
        site.until(network, "occi.network.state", "active")
        time.sleep(6)
        networked = site.boot(f'Link: <{network}>; rel="{INFRA}network"')
        site.until(networked, "occi.compute.state", "active")
        assert site.domain(networked) in domains(second)
        [nic] = [link for link in site.links(networked)
                 if link["kind"].endswith("#networkinterface")]
        site.until(f"/link/networkinterface/{nic['id']}", "occi.networkinterface.state",
                   "active")
        [nic] = [link for link in site.links(networked)
                 if link["kind"].endswith("#networkinterface")]
        address = nic["attributes"]["occi.networkinterface.address"]
        deadline = time.monotonic() + 120
        while f"occi-tiny: lease eth0 {address}/" not in site.request(
                "GET", f"{networked}/console")[1]:
            assert time.monotonic() < deadline, "no lease over the tunnel"
            time.sleep(1)
        bridge = "ob" + site.key(network)
        assert second.exec("ip", "-d", "link", "show", "ox" + site.key(network)).returncode == 0
        ports = second.exec("bridge", "-d", "link", "show", "master", bridge).stdout
        assert "isolated on" in ports, ports
        assert front.exec("busybox", "ping", "-c", "1", "-W", "5", address,
                          check=False).returncode == 0
        refused = front.exec("busybox", "nc", "-w", "3", address, "8080", check=False)
        assert "occi-tiny: port 8080" not in refused.stdout  # not in the default rules
        host_command(front, data_dir, "undrain", front.libvirt_uri)
        assert "ox" in front.exec("ip", "-o", "link", "show", "master", bridge).stdout

        # A guest on the frontend's host reaches the one on the second over the tunnel.
        host_command(front, data_dir, "drain", "hv2")
        time.sleep(6)
        script = f"#!/bin/sh\nping -c 3 -W 2 {address} >/dev/null && echo reached {address}\n"
        pinging = site.boot(f'Link: <{network}>; rel="{INFRA}network"',
                            category(USER_DATA, "mixin"), "X-OCCI-Attribute: "
                            f'occi.compute.userdata="{base64.b64encode(script.encode()).decode()}"')
        site.until(pinging, "occi.compute.state", "active")
        assert site.domain(pinging) in domains(front)
        deadline = time.monotonic() + 120
        while f"occi-tiny: script: reached {address}" not in site.request(
                "GET", f"{pinging}/console")[1]:
            assert time.monotonic() < deadline, "the guests did not reach each other"
            time.sleep(1)

        # A volume moves with its data from a guest on one host to one on the other.
        volume = site.create("/storage/", category(STORAGE, "kind"),
                             "X-OCCI-Attribute: occi.storage.size=1")
        site.until(volume, "occi.storage.state", "online")
        local = first if remote == other else other
        mark = ""
        for guest in (remote, local):
            link = site.create("/link/storagelink/", category(STORAGELINK, "kind"),
                               f'X-OCCI-Attribute: occi.core.source="{guest}"',
                               f'X-OCCI-Attribute: occi.core.target="{volume}"')
            site.until(link, "occi.storagelink.state", "active")
            wanted = f"carries {mark}" if mark else "marked occi-marker:"
            deadline = time.monotonic() + 60
            while wanted not in (console := site.request("GET", f"{guest}/console")[1]):
                assert time.monotonic() < deadline, f"{guest} did not find the volume"
                time.sleep(1)
            if not mark:
                mark = "occi-marker:" + console.split(wanted, 1)[1].split()[0]
            status, body = site.request("DELETE", link)
            assert status == 200, body
        assert mark.startswith("occi-marker:vm-")

        # A host with guests of the site stays.
        refused = host_command(front, data_dir, "remove", "hv2", check=False)
        assert refused.returncode == 2 and "still has guests" in refused.stderr

        # Drained with --migrate, its guests move live to the other host: still
        # running the same boot, the networked one reachable there, and the
        # network's bridge and tunnel gone from both ends.
        migrated = host_command(front, data_dir, "drain", "hv2", "--migrate", check=False)
        moved = migrated.stdout
        assert moved.count(" moved from hv2 to ") == 2, moved + migrated.stderr
        assert not domains(second)
        assert {site.domain(remote), site.domain(networked)} <= domains(front)
        for path in (remote, networked):
            assert site.attribute(path, "occi.compute.state") == "active"
        assert site.request("GET", f"{remote}/console")[1].count("occi-tiny: booted") == 1
        # Their disks came with them; nothing of theirs is left on the second
        # host, whose image cache is empty again.
        assert not guest_files(instances)
        assert not list((instances / "images").iterdir())
        assert front.exec("busybox", "ping", "-c", "1", "-W", "5", address,
                          check=False).returncode == 0
        assert second.exec("ip", "link", "show", bridge, check=False).returncode != 0
        assert "ox" not in front.exec("ip", "-o", "link", "show", "master", bridge).stdout

        # The frontend's host drained the same way: a stopped guest moves too,
        # stopped (started paused for the copy, its CPUs never run), and the
        # running one keeps its network through a new tunnel.
        for path in (local, third, fourth, pinging):
            status, body = site.request("DELETE", path)
            assert status == 200, body
        host_command(front, data_dir, "undrain", "hv2")
        status, body = site.request("POST", f"{remote}?action=stop",
                                    category(COMPUTE_ACTION + "stop", "action"))
        assert status == 200, body
        site.until(remote, "occi.compute.state", "inactive")
        kept = site.create("/link/storagelink/", category(STORAGELINK, "kind"),
                           f'X-OCCI-Attribute: occi.core.source="{networked}"',
                           f'X-OCCI-Attribute: occi.core.target="{volume}"')
        site.until(kept, "occi.storagelink.state", "active")
        assert "occi-iqn" in secrets(front)
        migrated = host_command(front, data_dir, "drain", front.libvirt_uri, "--migrate",
                                check=False)
        assert migrated.stdout.count(" to hv2") == 2, migrated.stdout + migrated.stderr
        assert {site.domain(remote), site.domain(networked)} == domains(second)
        assert not (data_dir / "instances" / site.key(remote)).exists()
        # Its volume went along: the CHAP secret QEMU logs in with moved too.
        assert "protocol='iscsi'" in nshost.run("virsh", "-c", second.libvirt_uri, "dumpxml",
                                                site.domain(networked)).stdout
        assert "occi-iqn" in secrets(second) and "occi-iqn" not in secrets(front)
        status, body = site.request("DELETE", kept)
        assert status == 200, body
        assert "occi-iqn" not in secrets(second)
        site.until(remote, "occi.compute.state", "inactive")
        assert front.exec("busybox", "ping", "-c", "1", "-W", "5", address,
                          check=False).returncode == 0
        # Whole disks came: the cache holds the boot files the guests still use.
        cached = {path.name.partition("-")[2] for path in (instances / "images").iterdir()}
        assert cached == {"tiny-vmlinuz", "tiny-initrd.gz"}
        status, body = site.request("POST", f"{remote}?action=start")
        assert status == 200, body
        deadline = time.monotonic() + 120  # its disk and console log came with it
        while site.request("GET", f"{remote}/console")[1].count("occi-tiny: ready") < 2:
            assert time.monotonic() < deadline, "the moved guest did not boot again"
            time.sleep(1)
        host_command(front, data_dir, "undrain", front.libvirt_uri)

        # The operator moves one guest, to the host named: back to the frontend's.
        refused = host_command(front, data_dir, "move", networked, "--to", "nosuch",
                               check=False)
        assert refused.returncode == 2 and "no host nosuch" in refused.stderr, refused.stderr
        assert site.domain(networked) in domains(second)  # the refusal moved nothing
        moved = host_command(front, data_dir, "move", networked, "--to", front.libvirt_uri)
        assert moved.stdout.startswith(f"{networked}: occi-"), moved.stdout
        assert site.domain(networked) in domains(front)
        assert front.exec("busybox", "ping", "-c", "1", "-W", "5", address,
                          check=False).returncode == 0
        assert site.attribute(networked, "occi.compute.state") == "active"

        # Without guests it can go, and it keeps none of their files.
        for path in (networked, remote, volume):
            status, body = site.request("DELETE", path)
            assert status == 200, body
        assert not guest_files(instances)
        assert not list((instances / "images").iterdir())
        status, body = site.request("DELETE", network)
        assert status == 200, body
        host_command(front, data_dir, "remove", "hv2")
        assert "hv2" not in host_command(front, data_dir, "list").stdout

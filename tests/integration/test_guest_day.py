"""A scientist's day on a real Debian 12 cloud guest, through OCCI only: boot
it with an SSH key and a script on a network with DHCP, log in with `ssh`,
keep results on a persistent volume reached over iSCSI with CHAP, throw the
machine away and find the volume (and a saved image of the machine) on the
next one.

Everything runs on a hypervisor host inside a network namespace the test
creates (tests/support/nshost.py): the guests, their bridge, dnsmasq, tgtd and
the SSH client are all there; nothing leaves it. The image is built from the
apt repositories once per machine (about 90 s); each boot takes about 45 s
under TCG."""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.config import load_config
from occi_server.http import create_app
from tests.conftest import (
    COMPUTE_ACTION,
    CRTP,
    IPNETWORK,
    NETWORK,
    SITE,
    STORAGE,
    STORAGELINK,
    Client,
    category,
)
from tests.support import nshost
from tests.support.libvirt import link_images, reachable_dir
from tests.support.libvirt import unavailable_reason as libvirt_unavailable

pytestmark = [
    pytest.mark.skipif((nshost.unavailable_reason() or libvirt_unavailable()) is not None,
                       reason=nshost.unavailable_reason() or libvirt_unavailable() or ""),
    pytest.mark.slow,
]

DEBIAN = SITE + "os_tpl#debian-12"
SSH_KEY_MIXIN = "http://schemas.ogf.org/occi/infrastructure/credentials#ssh_key"
USER_DATA_MIXIN = "http://schemas.ogf.org/occi/infrastructure/compute#user_data"
LEGACY_KEY = "http://schemas.openstack.org/instance/credentials#public_key"
LEGACY_DATA = "http://schemas.openstack.org/compute/instance#user_data"
NETWORK_REL = "http://schemas.ogf.org/occi/infrastructure#network"
STORAGE_ACTION = "http://schemas.ogf.org/occi/infrastructure/storage/action#"
SCRIPT = "#!/bin/sh\necho 'made by user data' > /var/tmp/marker\n"
BIN = Path(sys.executable).parent  # occi-server and occi, installed in the venv
BOOT_SECONDS = 420  # a Debian boot under TCG on a loaded 2-core machine, with margin
SETTLE_SECONDS = 600  # a job on a real guest (a boot, a graceful stop) on a busy host


@pytest.fixture(scope="module")
def host() -> Iterator[nshost.NamespaceHost]:
    started = nshost.NamespaceHost.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    directory = reachable_dir("occi-day-")
    link_images(directory, debian=True)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def site(host: nshost.NamespaceHost, data_dir: Path) -> Iterator[Client]:
    app = create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt",
        storage_backend="filepool", network_backend="bridge", data_dir=str(data_dir),
        site_scheme=SITE, libvirt_uri=host.libvirt_uri, reconcile_seconds=0,
        network_namespace=host.namespace, iscsi_exporter="tgt",
        iscsi_tgt_control_port=host.tgt_control_port, volume_access="iscsi",
        shutdown_timeout=120, job_wait_seconds=600))
    yield Client(app)
    app.extensions["occi.store"].dispose()


@pytest.fixture(scope="module")
def key(data_dir: Path) -> Path:
    private = data_dir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "scientist@day",
                    "-f", str(private)], check=True)
    return private


def ssh(host: nshost.NamespaceHost, key: Path, address: str, command: str,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`ssh -i key debian@address command`, from the namespace the guests' bridge is
    in; a session that stalls (a guest going down under it) counts as a failure."""
    try:
        return host.exec("ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
                         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                         "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5",
                         "-o", "LogLevel=ERROR", f"debian@{address}", command, check=False,
                         timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, 255, "", f"timed out after {timeout} s")


def logged_in(host: nshost.NamespaceHost, key: Path, address: str, site: Client,
              compute: str) -> None:
    """Wait until the guest takes an SSH login with the key (sshd runs and
    cloud-init has installed the key)."""
    deadline = time.monotonic() + BOOT_SECONDS
    while time.monotonic() < deadline:
        if ssh(host, key, address, "test -e /var/lib/cloud/instance/boot-finished").returncode \
                == 0:
            return
        time.sleep(3)
    console = site.get(f"{compute}/console").get_data(as_text=True)
    raise AssertionError(f"no SSH login to {address} within {BOOT_SECONDS} s; console:\n"
                         + console[-3000:])


def inside(host: nshost.NamespaceHost, key: Path, address: str, command: str) -> str:
    result = ssh(host, key, address, command)
    assert result.returncode == 0, f"{command}: {result.stderr}{result.stdout}"
    return result.stdout


def network(site: Client) -> str:
    return site.create(NETWORK, 'X-OCCI-Attribute: occi.network.address="10.78.0.0/24"',
                       'X-OCCI-Attribute: occi.network.gateway="10.78.0.1"',
                       'X-OCCI-Attribute: occi.core.title="lab"', mixins=(IPNETWORK,))


def boot(site: Client, net: str, hostname: str, *lines: str, template: str = DEBIAN,
         mixins: tuple[str, ...] = ()) -> tuple[str, str]:
    """POST a compute on `net`; returns its location and its interface's address."""
    compute = site.compute(f'X-OCCI-Attribute: occi.compute.hostname="{hostname}"', *lines,
                           f'Link: <{net}>; rel="{NETWORK_REL}"',
                           mixins=(template, CRTP + "small", *mixins))
    interface = next(link for link in site.json(compute)["links"]
                     if link["kind"].endswith("#networkinterface"))
    return compute, interface["attributes"]["occi.networkinterface.address"]


def act(site: Client, path: str, action: str, *lines: str) -> str:
    response = site.post_text(f"{path}?action={action}",
                              [category(COMPUTE_ACTION + action, "action"), *lines])
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def attach(site: Client, compute: str, storage: str) -> tuple[str, str]:
    """Link a volume; returns the link and the guest's device for it (by serial)."""
    link = site.create(STORAGELINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                       f'X-OCCI-Attribute: occi.core.target="{storage}"')
    assert site.settled(link, "occi.storagelink.state", SETTLE_SECONDS) == "active"
    return link, "/dev/disk/by-id/virtio-" + site.key(link)[:20]


def rebooted(host: nshost.NamespaceHost, key: Path, address: str, boot_id: str) -> None:
    """Wait for an SSH login to a new boot of the guest."""
    deadline = time.monotonic() + BOOT_SECONDS
    while time.monotonic() < deadline:
        result = ssh(host, key, address, "cat /proc/sys/kernel/random/boot_id", timeout=30)
        if result.returncode == 0 and result.stdout != boot_id:
            return
        time.sleep(3)
    raise AssertionError(f"{address} did not come back from its restart")


def wait_for_device(host: nshost.NamespaceHost, key: Path, address: str, device: str) -> None:
    inside(host, key, address, f"for i in $(seq 60); do test -e {device} && exit 0; sleep 1; "
                               "done; exit 1")


def test_a_scientists_day(site: Client, host: nshost.NamespaceHost, key: Path) -> None:
    public_key = Path(f"{key}.pub").read_text().strip()
    lab = network(site)

    # Morning: a VM with my key and my script; I log in with ssh.
    vm1, address1 = boot(site, lab, "analysis-1",
                         f'X-OCCI-Attribute: occi.credentials.ssh.publickey="{public_key}"',
                         'X-OCCI-Attribute: occi.compute.userdata="'
                         + base64.b64encode(SCRIPT.encode()).decode() + '"',
                         mixins=(SSH_KEY_MIXIN, USER_DATA_MIXIN))
    assert site.settled(vm1, "occi.compute.state", SETTLE_SECONDS) == "active"
    logged_in(host, key, address1, site, vm1)
    assert inside(host, key, address1, "hostname").strip() == "analysis-1"
    assert inside(host, key, address1, "cat /var/tmp/marker").strip() == "made by user data"
    addresses = inside(host, key, address1, "ip -4 -o addr show scope global")
    assert f" {address1}/24 " in addresses
    assert "analysis-1" in site.get(f"{vm1}/console").get_data(as_text=True)
    # The self-service page of the guest: the ssh line that just logged in, and its console.
    page = html.unescape(site.http.get(f"/my{vm1}").get_data(as_text=True))
    assert f"ssh debian@{address1}" in page
    assert "analysis-1" in page.partition('id="console"')[2]

    # Results go on a persistent volume, reached over iSCSI with CHAP.
    data = site.create(STORAGE, "X-OCCI-Attribute: occi.storage.size=1",
                       'X-OCCI-Attribute: occi.core.title="data"')
    link1, device = attach(site, vm1, data)
    wait_for_device(host, key, address1, device)
    before = site.attributes(vm1)["occi_server.monitoring.disk_write_bytes"]
    inside(host, key, address1, f"sudo mkfs.ext4 -q -L data {device} && sudo mkdir /data && "
                                f"sudo mount {device} /data && echo 'results of day 1' | "
                                "sudo tee /data/results.txt && sudo dd if=/dev/zero "
                                "of=/data/zeros bs=1M count=32 conv=fsync status=none && "
                                "sudo umount /data")
    after = site.attributes(vm1)["occi_server.monitoring.disk_write_bytes"]
    assert after - before >= 32 * 1024 * 1024  # the guest's writes show in its counters
    assert site.request("DELETE", link1).status_code == 200
    inside(host, key, address1, f"for i in $(seq 60); do test -e {device} || exit 0; sleep 1; "
                                "done; exit 1")

    # Something worth keeping on the machine's own disk, then a clean stop and a save.
    inside(host, key, address1, "echo 'tuned by hand' | sudo tee /etc/lab-setup")
    act(site, vm1, "stop", 'X-OCCI-Attribute: method="graceful"')
    assert site.settled(vm1, "occi.compute.state", SETTLE_SECONDS) == "inactive"
    message = site.attributes(vm1)["occi.compute.state.message"]
    assert "powered off" not in message  # the guest obeyed ACPI; no fallback
    saved = act(site, vm1, "save", 'X-OCCI-Attribute: name="analysis image"')
    term = re.search(r"Category: (\S+);", saved)
    assert term is not None, saved
    assert site.request("DELETE", vm1).status_code == 200

    # Afternoon: a new VM from the saved image, with the legacy EGI mixins.
    vm2, address2 = boot(site, lab, "analysis-2",
                         f'X-OCCI-Attribute: org.openstack.credentials.publickey.data='
                         f'"{public_key}"',
                         'X-OCCI-Attribute: org.openstack.compute.user_data="'
                         + base64.b64encode(b"#!/bin/sh\ntouch /var/tmp/second\n").decode()
                         + '"', template=f"{SITE}os_tpl#{term.group(1)}",
                         mixins=(LEGACY_KEY, LEGACY_DATA))
    assert site.settled(vm2, "occi.compute.state", SETTLE_SECONDS) == "active"
    logged_in(host, key, address2, site, vm2)
    assert inside(host, key, address2, "hostname").strip() == "analysis-2"
    assert inside(host, key, address2, "cat /etc/lab-setup").strip() == "tuned by hand"
    inside(host, key, address2, "test -e /var/tmp/second")

    # The volume follows me (the mount point came with the saved image).
    _link2, device = attach(site, vm2, data)
    wait_for_device(host, key, address2, device)
    inside(host, key, address2, f"sudo mount {device} /data")
    assert inside(host, key, address2, "cat /data/results.txt").strip() == "results of day 1"
    inside(host, key, address2, "sudo umount /data")

    # A snapshot keeps day 1 while the original moves on.
    response = site.post_text(f"{data}?action=snapshot", [
        category(STORAGE_ACTION + "snapshot", "action"), 'X-OCCI-Attribute: name="day 1"'])
    assert response.status_code == 200, response.get_data(as_text=True)
    snapshot = "/storage/" + re.search(r'occi\.core\.id="([^"]+)"',
                                       response.get_data(as_text=True)).group(1)
    assert site.settled(snapshot, "occi.storage.state", SETTLE_SECONDS) == "online"
    inside(host, key, address2, f"sudo mount {device} /data && echo 'day 2' | "
                                "sudo tee /data/results.txt && sudo umount /data")
    _link3, copy_device = attach(site, vm2, snapshot)
    wait_for_device(host, key, address2, copy_device)
    inside(host, key, address2, f"sudo mkdir /day1 && sudo mount -o ro {copy_device} /day1")
    assert inside(host, key, address2, "cat /day1/results.txt").strip() == "results of day 1"
    inside(host, key, address2, f"sudo mount {device} /data")
    assert inside(host, key, address2, "cat /data/results.txt").strip() == "day 2"

    # The volume grows while attached and mounted: the guest sees the new size.
    response = site.post_text(data, ["X-OCCI-Attribute: occi.storage.size=2"])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert site.settled(data, "occi.storage.state", SETTLE_SECONDS) == "online"
    assert "sees the new size" not in site.attributes(data)["occi.storage.state.message"]
    assert inside(host, key, address2, f"sudo blockdev --getsize64 {device}").strip() == \
        str(2 * 1024 ** 3)
    inside(host, key, address2, f"sudo resize2fs {device}")
    assert "day 2" in inside(host, key, address2, "cat /data/results.txt")

    # Restart, suspend and resume: the machine comes back at its address.
    boot_id = inside(host, key, address2, "cat /proc/sys/kernel/random/boot_id")
    act(site, vm2, "restart")
    assert site.settled(vm2, "occi.compute.state", SETTLE_SECONDS) == "active"
    rebooted(host, key, address2, boot_id)
    act(site, vm2, "suspend")
    assert site.settled(vm2, "occi.compute.state", SETTLE_SECONDS) == "suspended"
    assert ssh(host, key, address2, "true", timeout=30).returncode != 0  # paused: no answer
    act(site, vm2, "start")
    assert site.settled(vm2, "occi.compute.state", SETTLE_SECONDS) == "active"
    assert inside(host, key, address2, "hostname").strip() == "analysis-2"
    assert site.request("DELETE", vm2).status_code == 200


@pytest.fixture
def served(host: nshost.NamespaceHost) -> Iterator[tuple[str, Path]]:
    """The service as scripts/run.sh starts it, inside the namespace, with
    volumes reached over iSCSI; yields its URL and data directory."""
    directory = reachable_dir("occi-day-served-")
    link_images(directory, debian=True)
    try:
        with host.serve(directory, volume_access="iscsi", shutdown_timeout="120") as url:
            yield url, directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_client_does_the_day_in_one_command(host: nshost.NamespaceHost, key: Path,
                                               served: tuple[str, Path]) -> None:
    """`occi run … --ssh` starts the machine with its volume, waits until the
    key logs in, and prints the ssh line that does."""
    url, directory = served
    occi = [str(BIN / "occi"), "-e", url]
    host.exec(*occi, "create", "-r", "network", "-M", "ipnetwork", "-A", "occi.core.title=lab",
              "-A", "occi.network.address=10.79.0.0/24", "-A", "occi.network.gateway=10.79.0.1")
    host.exec(*occi, "create", "-r", "storage", "-A", "occi.core.title=data",
              "-A", "occi.storage.size=1")
    setup = directory / "setup.sh"
    setup.write_text(SCRIPT)
    started = host.exec(*occi, "run", "debian-12", "--ssh-key", f"{key}.pub", "--user-data",
                        str(setup), "--volume", "data", "--network", "lab", "--ssh",
                        timeout=BOOT_SECONDS + 300)
    line = started.stdout.strip().splitlines()[-1]
    assert line.startswith("ssh ") and f"-i {key} " in line, started.stdout + started.stderr
    command = shlex.split(line)

    def logged_in_with(remote: str) -> str:
        result = host.exec(command[0], "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                           *command[1:], remote, timeout=300)
        return result.stdout

    # The key logs in as soon as sshd runs; the script is cloud-init's last stage.
    assert logged_in_with("cloud-init status --wait >/dev/null; cat /var/tmp/marker; "
                          "lsblk -dn -o SIZE /dev/vdb").split() == \
        ["made", "by", "user", "data", "1G"]

    # The operator's /metrics shows the guest at work.
    [compute] = json.loads(host.exec(*occi, "-o", "json", "list", "compute").stdout)
    compute = compute.removeprefix(url)

    def disk_written() -> float:
        scraped = host.exec("curl", "-fsS", f"{url}/metrics").stdout
        found = re.search(rf'^occi_guest_disk_write_bytes{{compute="{compute}"}} (\S+)$',
                          scraped, re.MULTILINE)
        assert found is not None, scraped[-2000:]
        return float(found.group(1))

    before = disk_written()
    logged_in_with("dd if=/dev/zero of=/var/tmp/zeros bs=1M count=16 conv=fsync status=none")
    assert disk_written() - before >= 16 * 1024 * 1024

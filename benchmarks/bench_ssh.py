"""Time from POST /compute/ to a working SSH login on the Debian 12 cloud image,
against the same image booted with bare qemu-system-x86_64 (same accelerator,
same kind of NoCloud seed, user-mode networking on loopback) until the same
login works, in one run.

    .venv/bin/python benchmarks/bench_ssh.py [--rounds 1]

Needs root and what the tests need (scripts/setup.sh --test); the image is
built on first use (about 90 s). The OCCI guest runs on a hypervisor host in a
network namespace of its own (tests/support/nshost.py), reached over its
bridge. Prints the medians and their ratio."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from occi_server.backends.base import Context
from occi_server.backends.libvirt.seed import seed_iso
from occi_server.config import load_config
from occi_server.http import create_app
from tests.support.libvirt import link_images, reachable_dir
from tests.support.nshost import NamespaceHost

SITE = "http://bench.local/occi/"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
SSH_PORT = 2222  # the bare guest's sshd, forwarded on loopback


def ssh_works(prefix: list[str], key: Path, destination: list[str]) -> bool:
    command = [*prefix, "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", *destination, "true"]
    return subprocess.run(command, capture_output=True, timeout=60).returncode == 0


def until_login(prefix: list[str], key: Path, destination: list[str], started: float,
                timeout: float = 600) -> float:
    while time.perf_counter() - started < timeout:
        if ssh_works(prefix, key, destination):
            return time.perf_counter() - started
        time.sleep(0.5)
    raise TimeoutError(f"no SSH login to {destination} within {timeout} s")


def bare_qemu(images: Path, work: Path, key: Path, accel: str) -> float:
    disk, seed = work / "bare.qcow2", work / "bare-seed.iso"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    str(images / "debian-12.qcow2"), str(disk), "10G"], check=True)
    seed.write_bytes(seed_iso(f"bare-{time.time_ns()}", "bare",
                              Context(ssh_keys=(Path(f"{key}.pub").read_text(),))))
    started = time.perf_counter()
    process = subprocess.Popen([
        "qemu-system-x86_64", "-accel", accel, "-m", "1024", "-display", "none", "-nodefaults",
        "-no-reboot", "-serial", "null", "-kernel", str(images / "debian-12-vmlinuz"),
        "-initrd", str(images / "debian-12-initrd.img"),
        "-append", "root=/dev/vda rw console=ttyS0 panic=-1",
        "-drive", f"file={disk},if=virtio,format=qcow2",
        "-drive", f"file={seed},media=cdrom,if=ide,readonly=on",
        "-nic", f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{SSH_PORT}-:22"])
    try:
        return until_login([], key, ["-p", str(SSH_PORT), "debian@127.0.0.1"], started)
    finally:
        process.kill()
        process.wait()
        disk.unlink()


def through_occi(client, host: NamespaceHost, network: str, key: Path) -> float:
    body = (f'Category: compute; scheme="{INFRA}"; class="kind"\n'
            f'Category: debian-12; scheme="{SITE}os_tpl#"; class="mixin"\n'
            'Category: small; scheme="http://schemas.ogf.org/occi/infrastructure/compute/'
            'template/1.1#"; class="mixin"\n'
            'Category: ssh_key; scheme="http://schemas.ogf.org/occi/infrastructure/'
            'credentials#"; class="mixin"\n'
            f'X-OCCI-Attribute: occi.credentials.ssh.publickey="'
            f'{Path(f"{key}.pub").read_text().strip()}"\n'
            f'Link: <{network}>; rel="{INFRA}network"\n')
    started = time.perf_counter()
    response = client.post("/compute/", data=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201, response.get_data(as_text=True)
    path = response.headers["Location"].removeprefix("http://localhost")
    try:
        links = client.get(path, headers={"Accept": "application/occi+json"}).get_json()["links"]
        address = next(link["attributes"]["occi.networkinterface.address"] for link in links
                       if link["kind"] == INFRA + "networkinterface")
        return until_login(["ip", "netns", "exec", host.namespace], key,
                           [f"debian@{address}"], started)
    finally:
        client.delete(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    work = reachable_dir("occi-bench-ssh-")
    host = NamespaceHost.start()
    try:
        link_images(work, debian=True)
        key = work / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        app = create_app(load_config(
            environ={}, backend="simulated", compute_backend="libvirt",
            network_backend="bridge", data_dir=str(work), site_scheme=SITE,
            libvirt_uri=host.libvirt_uri, network_namespace=host.namespace,
            reconcile_seconds=0, job_wait_seconds=600))
        client = app.test_client()
        accel = app.extensions["occi.service"].backends.compute.accelerator
        created = client.post("/network/", headers={"Content-Type": "text/plain"}, data=(
            f'Category: network; scheme="{INFRA}"; class="kind"\n'
            'Category: ipnetwork; scheme="http://schemas.ogf.org/occi/infrastructure/network#";'
            ' class="mixin"\nX-OCCI-Attribute: occi.network.address="10.88.0.0/24"\n'
            'X-OCCI-Attribute: occi.network.gateway="10.88.0.1"\n'))
        network = created.headers["Location"].removeprefix("http://localhost")
        bare, occi = [], []
        for _ in range(args.rounds):
            bare.append(bare_qemu(work / "images", work, key,
                                  "kvm" if accel.domain_type == "kvm" else "tcg"))
            occi.append(through_occi(client, host, network, key))
        b, o = statistics.median(bare), statistics.median(occi)
        print(f"accelerator: {accel.label} ({accel.reason})")
        print(f"{'path to an SSH login':32} {'median s':>9}   rounds")
        print(f"{'bare qemu-system-x86_64':32} {b:9.1f}   {', '.join(f'{x:.1f}' for x in bare)}")
        print(f"{'POST /compute/ (libvirt, DHCP)':32} {o:9.1f}   "
              f"{', '.join(f'{x:.1f}' for x in occi)}")
        print(f"ratio OCCI / bare: {o / b:.2f}")
    finally:
        host.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root (libvirt, network namespaces)")
    main()

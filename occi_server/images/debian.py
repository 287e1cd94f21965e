"""Builds a real Debian 12 cloud image offline, from the apt repositories:
debootstrap with cloud-init, openssh-server and the Debian cloud kernel, an
ext4 root file system packed into a qcow2 disk, and the kernel and initramfs
beside it for direct kernel boot. It is registered in the image catalogue as
the os_tpl `debian-12`, with its SHA-256.

What the guest does at boot: cloud-init reads the NoCloud seed (host name,
the `debian` user with the seed's SSH keys and sudo, user data scripts, root
file system grown to the disk's size), systemd-networkd takes a DHCP lease on
every ethernet interface, sshd answers, and the ACPI power button powers it
off cleanly.

Needs root (debootstrap, chroot), debootstrap, mke2fs with -d (e2fsprogs
1.43+) and qemu-img. About 90 s and 600 MB of downloads on a first build;
a second build with nothing changed returns at once."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from occi_server.images.build import BuildError, run
from occi_server.images.catalogue import sha256_of

IMAGE = "debian-12"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# python3-cffi-backend is named because debootstrap resolves no virtual packages
# (cloud-init's python3-cryptography needs the one it provides).
PACKAGES = ("systemd-sysv", "udev", "dbus", "cloud-init", "openssh-server", "sudo",
            "linux-image-cloud-amd64", "initramfs-tools", "python3-cffi-backend", "iproute2",
            "e2fsprogs", "ca-certificates", "less")
DISK_GIB = 2
CMDLINE = "root=/dev/vda rw console=ttyS0 panic=-1"
# How the catalogue describes the image: not part of the recipe, so an image
# already built takes the current description without being built again.
DESCRIPTION = {
    "title": "Debian 12 (bookworm) with cloud-init",
    "description": "Debian cloud kernel, cloud-init (NoCloud), openssh-server; log in as "
                   "'debian' with your SSH key",
    "os": "linux", "architecture": "x64", "login_user": "debian",
}
# Files written into the image, path → content.
FILES = {
    "etc/fstab": "LABEL=root / ext4 defaults,errors=remount-ro 0 1\n",
    # Networking is the image's own: DHCP on every ethernet interface, whatever
    # its name. cloud-init 22.4 on Debian has no renderer for the seed's
    # "match any e*" network-config, so it is told to leave networking alone.
    "etc/systemd/network/90-dhcp.network":
        "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\nUseHostname=false\n",
    "etc/cloud/cloud.cfg.d/90-occi-server.cfg":
        "datasource_list: [NoCloud, None]\nnetwork:\n  config: disabled\n"
        # The host name resolves (sudo asks), the locale exists in a minimal
        # system, and no slow RSA host key is made under emulation.
        "manage_etc_hosts: true\nlocale: C.UTF-8\nssh_genkeytypes: [ed25519, ecdsa]\n",
    # The guest answers SSH as soon as sshd runs; no reverse DNS lookups.
    "etc/ssh/sshd_config.d/90-occi-server.conf": "UseDNS no\n",
}
SERVICES = ("systemd-networkd",)


def recipe() -> str:
    """What the image is made of: a second build with the same recipe is skipped."""
    text = json.dumps({"suite": SUITE, "packages": PACKAGES, "files": FILES,
                       "services": SERVICES, "cmdline": CMDLINE, "disk": DISK_GIB},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build(images_dir: Path, cache_dir: Path, mirror: str = DEFAULT_MIRROR) -> Path:
    """Build (or reuse) the Debian 12 image in `images_dir`; returns its metadata file."""
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed: apt-get install debootstrap")
    images_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    version = recipe()
    metadata = images_dir / f"{IMAGE}.json"
    if metadata.exists():
        built = json.loads(metadata.read_text())
        if built.get("version") == version:
            if any(built.get(key) != value for key, value in DESCRIPTION.items()):
                draft = metadata.with_suffix(".json.new")  # readers never see half of it
                draft.write_text(json.dumps({**built, **DESCRIPTION}, indent=2) + "\n")
                draft.replace(metadata)
            return metadata
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        root = Path(work) / "root"
        run("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
            str(root), mirror)
        _configure(root)
        kernel, initrd = _boot_files(root)
        shutil.copy2(kernel, images_dir / f"{IMAGE}-vmlinuz")
        shutil.copy2(initrd, images_dir / f"{IMAGE}-initrd.img")
        raw = Path(work) / "disk.raw"
        run("mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(root), str(raw),
            f"{DISK_GIB}G")
        disk = images_dir / f"{IMAGE}.qcow2"
        run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(disk))
    metadata.write_text(json.dumps({
        **DESCRIPTION, "version": version,
        "disk": disk.name, "format": "qcow2", "sha256": sha256_of(disk),
        "kernel": f"{IMAGE}-vmlinuz", "initrd": f"{IMAGE}-initrd.img", "cmdline": CMDLINE,
    }, indent=2) + "\n")
    return metadata


def _configure(root: Path) -> None:
    """Make the bootstrapped tree a cloud image: our files, a fresh identity
    on each guest, and no package archives left inside."""
    for relative, content in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for service in SERVICES:
        run("chroot", str(root), "systemctl", "enable", "--quiet", service)
    (root / "etc" / "machine-id").write_text("")  # each guest makes its own
    (root / "etc" / "hostname").unlink(missing_ok=True)  # cloud-init sets it
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()  # cloud-init makes each guest its own host keys
    for leftover in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)


def _boot_files(root: Path) -> tuple[Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BuildError("the bootstrapped system has no kernel in /boot")
    kernel = kernels[-1]
    initrd = root / "boot" / kernel.name.replace("vmlinuz-", "initrd.img-")
    if not initrd.exists():
        raise BuildError(f"the bootstrapped system has no {initrd.name} in /boot")
    return kernel, initrd

"""What tests (and benchmarks) on the real libvirt share: whether it can run
here, directories QEMU can reach, the tiny image, guests defined on a host's
files, and the pools a test leaves."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from occi_server.backends.libvirt.storage import GuestPaths


IMAGE_CACHE = Path("/var/tmp/occi-test-images")


def unavailable_reason() -> str | None:
    """Why libvirt tests cannot run here, or None when they can."""
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed"
    if os.geteuid() != 0:
        return "libvirt qemu:///system needs root"
    try:
        libvirt.open("qemu:///system").close()
    except libvirt.libvirtError as exc:
        return f"libvirt is not running (scripts/daemons.sh starts it): {exc}"
    return None


def reachable_dir(prefix: str) -> Path:
    """A new directory QEMU (user libvirt-qemu) can reach: pytest's are private."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    directory.chmod(0o755)
    return directory


def tiny_images() -> Path:
    """The tiny image, built once per machine into a cache."""
    from occi_server.images.tiny import build
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    IMAGE_CACHE.chmod(0o755)
    build(IMAGE_CACHE / "images", IMAGE_CACHE / "cache")
    return IMAGE_CACHE / "images"


def debian_images() -> Path:
    """The Debian 12 cloud image, built once per machine into the same cache
    (about 90 s the first time)."""
    from occi_server.images.debian import build
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    IMAGE_CACHE.chmod(0o755)
    build(IMAGE_CACHE / "images", IMAGE_CACHE / "cache")
    return IMAGE_CACHE / "images"


def link_images(into: Path, *, debian: bool = False) -> Path:
    """An image catalogue of its own (saves write into it) sharing the cached
    images' files: the tiny image, and the Debian one if asked for."""
    images = into / "images"
    images.mkdir()
    tiny_images()
    if debian:
        debian_images()
    for source in (IMAGE_CACHE / "images").iterdir():
        if debian or not source.name.startswith("debian-"):
            os.link(source, images / source.name)
    return images


def add_halting_image(images: Path) -> str:
    """An image whose boot sector stops its CPU (cli; hlt): a real guest that
    libvirt runs and that costs the host nothing once booted, for tests that
    run many at once (an idle tiny guest costs 2 % of a core under TCG here,
    and a whole core under KVM on a nested host). Returns its os_tpl term."""
    boot_sector = bytes.fromhex("faf4ebfd").ljust(510, b"\0") + b"\x55\xaa"
    (images / "halting.raw").write_bytes(boot_sector.ljust(1024 * 1024, b"\0"))
    (images / "halting.json").write_text(json.dumps({
        "title": "A boot sector that halts", "disk": "halting.raw", "format": "raw",
        "os": "other", "architecture": "x64"}))
    return "halting"


class DefinedGuests:
    """Guests defined (not started) on the machine's libvirt with the files a
    host made for them: what a host's files are kept for. Their names are
    outside the service's `occi-` prefix, so no service takes them for its own."""

    def __init__(self, label: str) -> None:
        import libvirt
        self.connection = libvirt.open("qemu:///system")
        self.prefix = f"{label}-{uuid.uuid4().hex[:8]}-"
        self.keys: set[str] = set()

    def define(self, key: str, paths: GuestPaths) -> None:
        from occi_server.backends.libvirt.domain import DomainSpec, domain_xml
        self.connection.defineXML(domain_xml(DomainSpec(
            name=self.prefix + key, title=key, location=f"/compute/{key}", memory_gib=0.125,
            vcpus=1, accelerator="qemu", disk=paths.disk, disk_format="qcow2",
            seed=paths.seed, console_log=paths.console, kernel=paths.kernel,
            initrd=paths.initrd)))
        self.keys.add(key)

    def undefine(self, key: str) -> None:
        self.connection.lookupByName(self.prefix + key).undefine()
        self.keys.discard(key)

    def close(self) -> None:
        for key in list(self.keys):
            self.undefine(key)
        self.connection.close()


def drop_pools(directory: Path) -> None:
    """Every libvirt pool at a path in `directory` stopped and forgotten."""
    import libvirt
    connection = libvirt.open("qemu:///system")
    for pool in connection.listAllStoragePools(0):
        if str(directory) in pool.XMLDesc(0):
            if pool.isActive():
                pool.destroy()
            pool.undefine()
    connection.close()

"""What tests on the real libvirt share: whether it can run here, directories
QEMU can reach, and the tiny image."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

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

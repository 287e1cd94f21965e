"""Builds the tiny test guest from Debian packages: the Debian cloud kernel and
a static busybox initramfs whose /init prints its NoCloud seed on the serial
console. It boots in seconds under TCG and is registered in the image
catalogue as the os_tpl `tiny`.

Needs apt-get (to download the kernel package), dpkg-deb, cpio and the
busybox-static package."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from occi_server.images.build import BuildError, run

MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_balloon", "isofs", "button",
           "evdev", "ata_piix", "sr_mod")
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
DISK_BYTES = 64 * 1024 * 1024
IMAGE = "tiny"


def kernel_package() -> str:
    """The versioned kernel package the cloud meta-package depends on."""
    output = run("apt-cache", "depends", KERNEL_META_PACKAGE).decode()
    match = re.search(r"Depends:\s*(linux-image-\S+)", output)
    if not match:
        raise BuildError(f"no kernel package found behind {KERNEL_META_PACKAGE}; run apt-get "
                         "update")
    return match.group(1)


def _module_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The wanted modules and their dependencies, dependencies first."""
    files = {p.name.split(".")[0]: p for p in modules_dir.rglob("*.ko")}
    ordered: list[Path] = []

    def visit(name: str) -> None:
        path = files.get(name) or files.get(name.replace("-", "_"))
        if path is None or path in ordered:
            return  # built into the kernel, or already placed
        match = re.search(rb"depends=([^\x00]*)", path.read_bytes())
        for dependency in (match.group(1).decode().split(",") if match else []):
            if dependency:
                visit(dependency)
        ordered.append(path)

    for name in wanted:
        visit(name)
    return ordered


def _is_static(executable: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP) is static."""
    data = executable.read_bytes()[:65536]
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit ELF
        return False
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    return all(int.from_bytes(data[phoff + i * phentsize:phoff + i * phentsize + 4], "little")
               != 3 for i in range(phnum))


def _cpio_gzip(root: Path, destination: Path) -> None:
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    archive = run("cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0", cwd=root,
                   data=("\n".join([".", *paths]) + "\n").encode())
    with gzip.open(destination, "wb", compresslevel=6) as handle:
        handle.write(archive)


def build(images_dir: Path, cache_dir: Path) -> Path:
    """Build (or reuse) the tiny image in `images_dir`; returns its metadata file."""
    images_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    package_files = resources.files("occi_server.images")
    scripts = {name: package_files.joinpath(name).read_text()
               for name in ("tiny-init.sh", "tiny-dhcp-event.sh")}
    # The image changes with the kernel package, the guest's scripts and its drivers.
    version = f"{kernel_package()}+" + hashlib.sha256(
        "".join([*scripts.values(), *MODULES]).encode()).hexdigest()[:12]
    package = version.partition("+")[0]
    metadata = images_dir / f"{IMAGE}.json"
    if metadata.exists() and json.loads(metadata.read_text()).get("version") == version:
        return metadata
    debs = sorted(cache_dir.glob(f"{package}_*.deb"))
    if not debs:
        run("apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package,
             cwd=cache_dir)
        debs = sorted(cache_dir.glob(f"{package}_*.deb"))
    busybox = shutil.which("busybox")
    if busybox is None or not _is_static(Path(busybox)):
        raise BuildError("a static busybox is needed: apt-get install busybox-static")
    with tempfile.TemporaryDirectory(dir=cache_dir) as work:
        unpacked = Path(work) / "kernel"
        run("dpkg-deb", "-x", str(debs[-1]), str(unpacked))
        [vmlinuz] = list((unpacked / "boot").glob("vmlinuz-*"))
        [modules_dir] = list((unpacked / "lib" / "modules").iterdir())
        root = Path(work) / "initramfs"
        (root / "bin").mkdir(parents=True)
        (root / "lib" / "modules").mkdir(parents=True)
        shutil.copy2(busybox, root / "bin" / "busybox")
        order = _module_order(modules_dir, MODULES)
        for module in order:
            shutil.copy2(module, root / "lib" / "modules" / module.name)
        (root / "lib" / "modules" / "order").write_text(
            "\n".join(m.name.removesuffix(".ko") for m in order) + "\n")
        for name, target in (("tiny-init.sh", root / "init"),
                             ("tiny-dhcp-event.sh", root / "bin" / "dhcp-event")):
            target.write_text(scripts[name])
            target.chmod(0o755)
        _cpio_gzip(root, images_dir / f"{IMAGE}-initrd.gz")
        shutil.copy2(vmlinuz, images_dir / f"{IMAGE}-vmlinuz")
    disk = images_dir / f"{IMAGE}.raw"
    with disk.open("wb") as handle:
        handle.truncate(DISK_BYTES)
    metadata.write_text(json.dumps({
        "title": "Tiny test guest (busybox on the Debian cloud kernel)",
        "description": "Boots in seconds; prints its NoCloud seed on the serial console",
        "version": version,
        "disk": disk.name, "format": "raw",
        "kernel": f"{IMAGE}-vmlinuz", "initrd": f"{IMAGE}-initrd.gz",
        "cmdline": "console=ttyS0 panic=-1 loglevel=4",
        "os": "linux", "architecture": "x64",
    }, indent=2) + "\n")
    return metadata

"""Puts an operator's image file into the catalogue as an os_tpl: the disk is
copied under the server's name for it, its format read by
qemu-img, its SHA-256 computed and, when the operator gives one, checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from occi_server.images.build import BuildError, run
from occi_server.images.catalogue import TERM, sha256_of


def import_image(images_dir: Path, source: Path, term: str, *, title: str = "",
                 sha256: str = "", kernel: Path | None = None, initrd: Path | None = None,
                 cmdline: str = "", os_name: str = "linux", architecture: str = "x64") -> Path:
    """Add `source` as the os_tpl `term`; returns its metadata file."""
    if not TERM.fullmatch(term):
        raise BuildError(f"{term!r} is not a valid image name (lower-case letters, digits, "
                         "'.', '_', '-')")
    metadata = images_dir / f"{term}.json"
    if metadata.exists():
        raise BuildError(f"the catalogue has an image {term} already; remove {metadata} first")
    if not source.is_file():
        raise BuildError(f"{source} is not a file")
    found = json.loads(run("qemu-img", "info", "--output=json", str(source)))
    disk_format = found.get("format")
    if disk_format not in ("qcow2", "raw"):
        raise BuildError(f"{source} is a {disk_format} image; convert it to qcow2 first "
                         "(qemu-img convert -O qcow2)")
    if found.get("backing-filename"):
        raise BuildError(f"{source} has a backing file; flatten it first (qemu-img convert)")
    digest = sha256_of(source)
    if sha256 and digest != sha256.lower():
        raise BuildError(f"the SHA-256 of {source} is {digest}, not {sha256}")
    images_dir.mkdir(parents=True, exist_ok=True)
    entry: dict[str, Any] = {"title": title or term, "disk": f"{term}.{disk_format}",
                             "format": disk_format, "sha256": digest, "os": os_name,
                             "architecture": architecture}
    _place(source, images_dir / entry["disk"])
    for key, path in (("kernel", kernel), ("initrd", initrd)):
        if path is not None:
            entry[key] = f"{term}-{key}"
            _place(path, images_dir / entry[key])
    if cmdline:
        entry["cmdline"] = cmdline
    metadata.write_text(json.dumps(entry, indent=2) + "\n")
    return metadata


def _place(source: Path, target: Path) -> None:
    """A copy the catalogue owns, readable by QEMU: later changes to the
    operator's file do not reach it."""
    shutil.copyfile(source, target)
    target.chmod(0o644)

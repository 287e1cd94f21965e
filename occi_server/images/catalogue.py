"""The image catalogue: bootable images in a directory, each described by a
JSON file beside it, published as os_tpl mixins.

    images/debian-12.json    {"title": "Debian 12", "disk": "debian-12.qcow2",
                              "format": "qcow2", "os": "linux", "architecture": "x64",
                              "sha256": "…", "kernel": "…", "initrd": "…", "cmdline": "…",
                              "login_user": "debian"}

`kernel`, `initrd` and `cmdline` are optional (direct kernel boot); `login_user`
is who logs in with the user's SSH key (the web pages' ssh line says it). Adding or
removing a file changes the catalogue at once: it is re-read when the
directory changes."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from occi_server.images import Image
from occi_server.images.diskfile import virtual_size

log = logging.getLogger("occi_server.images")
TERM = re.compile(r"[a-z][a-z0-9_.-]{0,62}")
_FORMATS = ("qcow2", "raw")


class ImageCatalogue:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._images: list[Image] = []
        # Verified checksums by (path, size, mtime): each file is hashed once.
        self._verified: dict[tuple[str, int, float], str] = {}

    def images(self) -> list[Image]:
        with self._lock:
            stamp = self.stamp()
            if stamp != self._stamp:
                self._images = self._scan()
                self._stamp = stamp
            return list(self._images)

    def find(self, term: str) -> Image | None:
        return next((image for image in self.images() if image.term == term), None)

    def stamp(self) -> tuple[float, int]:
        """The directory's latest change and its number of files."""
        if not self.directory.is_dir():
            return (0.0, 0)
        entries = list(self.directory.iterdir())
        latest = max([self.directory.stat().st_mtime, *(e.stat().st_mtime for e in entries)])
        return (latest, len(entries))

    def _scan(self) -> list[Image]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(self._load(path))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("image %s is not published: %s", path.name, exc)
        return found

    def _load(self, path: Path) -> Image:
        term = path.stem
        if not TERM.fullmatch(term):
            raise ValueError(f"{term!r} is not a valid image name (lower-case letters, digits, "
                             "'.', '_', '-')")
        metadata: dict[str, Any] = json.loads(path.read_text())
        disk = self._file(metadata["disk"], "disk")
        if metadata.get("sha256"):
            self._verify(disk, str(metadata["sha256"]).lower())
        disk_format = metadata.get("format", "qcow2")
        if disk_format not in _FORMATS:
            raise ValueError(f"format must be one of {', '.join(_FORMATS)}")
        info: dict[str, Any] = {"disk": str(disk), "format": disk_format,
                                "virtual_size": virtual_size(disk, disk_format)}
        for key in ("kernel", "initrd"):
            if metadata.get(key):
                info[key] = str(self._file(metadata[key], key))
        if metadata.get("cmdline"):
            info["cmdline"] = str(metadata["cmdline"])
        for key in ("sha256", "sha512", "description", "version", "login_user"):
            if metadata.get(key):
                info[key] = str(metadata[key])
        if isinstance(metadata.get("endorsement"), dict):  # written by an image list sync
            info["endorsement"] = {k: str(v) for k, v in metadata["endorsement"].items()}
        return Image(term=term, title=str(metadata.get("title") or term),
                     os=str(metadata.get("os", "linux")),
                     architecture=str(metadata.get("architecture", "x64")), info=info)

    def _verify(self, disk: Path, expected: str) -> None:
        stat = disk.stat()
        key = (str(disk), stat.st_size, stat.st_mtime)
        if key not in self._verified:
            self._verified[key] = sha256_of(disk)
        if self._verified[key] != expected:
            raise ValueError(f"the SHA-256 of {disk.name} is {self._verified[key]}, not "
                             f"{expected} as its metadata says")

    def _file(self, name: str, what: str) -> Path:
        candidate = (self.directory / name).resolve()
        if candidate.parent != self.directory.resolve():
            raise ValueError(f"{what} {name!r} must be a file in {self.directory}")
        if not candidate.is_file():
            raise ValueError(f"{what} file {name!r} is missing")
        return candidate


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Storage in a file pool: each volume is a sparse raw file in a directory.

Volumes are thin (the file system allocates on write) and raw, so that the same
bytes serve a local guest and any iSCSI initiator. A volume cloned from an
image is a qcow2 overlay on the image (`vol-<id>.qcow2`, made in constant time
whatever the image's size) shown as the raw file `vol-<id>.img` by a
qemu-storage-daemon (occi_server.backends.rawview): everything else sees
every volume the same way."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from occi_server.backends.iscsi import Exporter
from occi_server.backends.pool import PoolStorage, stem_of_key
from occi_server.backends.rawview import RawViews
from occi_server.errors import BackendFailure
from occi_server.images.diskfile import qemu_img, virtual_size
from occi_server.kinds.infrastructure import GIB

if TYPE_CHECKING:
    from occi_server.config import Config

SUFFIX = ".img"
OVERLAY = ".qcow2"
OWNERSHIP_XATTRS = ("user.occi.tenant", "user.occi.owner", "user.occi.id")
__all__ = ["GIB", "FilePoolStorage", "volume_name"]

log = logging.getLogger("occi_server.storage")


def volume_name(key: str) -> str:
    """The file name of the volume with the server's key `key`."""
    return stem_of_key(key) + SUFFIX


def _copy(source: Path, target: Path) -> None:
    """Copy-on-write where the file system supports it (reflink), else a sparse copy."""
    try:
        subprocess.run(["cp", "--reflink=auto", "--sparse=always", "--", str(source),
                        str(target)], check=True, capture_output=True, timeout=3600)
    except subprocess.CalledProcessError as exc:
        target.unlink(missing_ok=True)
        raise BackendFailure(f"copying {source.name} failed: "
                             f"{exc.stderr.decode(errors='replace').strip()}") from None


class FilePoolStorage(PoolStorage):
    name = "filepool"

    def __init__(self, pool: Path, quarantine: Path, capacity_gib: float = 0,
                 grace_seconds: float = 7 * 24 * 3600, exporter: Exporter | None = None,
                 backups: Path | None = None, views: RawViews | None = None) -> None:
        super().__init__(capacity_gib, grace_seconds, exporter, pool / ".allocation.lock")
        self.pool = pool
        self.quarantine = quarantine
        self.backups = backups or pool / "backups"
        for directory in (pool, quarantine, self.backups):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o755)  # QEMU (another user) opens the volumes
        self.views = views or RawViews(pool / "views")

    @property
    def label(self) -> str:
        exported = f", exported over iSCSI with {self.exporter.name}" if self.exporter else ""
        return f"the file pool in {self.pool}{exported}"

    def _file(self, name: str) -> Path:
        return self.pool / f"{name}{SUFFIX}"

    def _overlay(self, name: str) -> Path:
        return self.pool / f"{name}{OVERLAY}"

    def _aside_file(self, name: str, stamp: int, suffix: str = SUFFIX) -> Path:
        return self.quarantine / f"{name}.{stamp}{suffix}"

    def volumes(self) -> dict[str, int]:
        return {name: self.size(name) for name in
                (p.name.removesuffix(SUFFIX) for p in self.pool.glob(f"vol-*{SUFFIX}"))}

    def size(self, name: str) -> int:
        # A clone's size is in its overlay's header, readable even while its view is down.
        overlay = self._overlay(name)
        if overlay.exists():
            return virtual_size(overlay, "qcow2")
        return self._file(name).stat().st_size

    def pool_size(self) -> int:
        stats = os.statvfs(self.pool)
        return stats.f_blocks * stats.f_frsize

    def allocate(self, name: str, size: int) -> None:
        with self._file(name).open("xb") as handle:
            handle.truncate(size)
        self._file(name).chmod(0o660)

    def clone(self, name: str, disk: Path, disk_format: str, size: int) -> None:
        overlay = self._overlay(name)
        if overlay.exists():
            raise BackendFailure(f"volume {name} exists already")
        qemu_img("create", "-q", "-f", "qcow2", "-F", disk_format, "-b", str(disk),
                 str(overlay), str(size), doing=f"cloning {disk.name}", timeout=600)
        try:
            self.views.open(overlay, self._file(name))
        except BaseException:
            self.discard(name)
            raise

    def grow(self, name: str, size: int) -> None:
        os.truncate(self._file(name), size)  # a clone's view passes it to its overlay

    def discard(self, name: str) -> None:
        self.views.close(self._file(name))
        self._overlay(name).unlink(missing_ok=True)
        self._file(name).unlink(missing_ok=True)

    def copy(self, name: str, new_name: str) -> None:
        _copy(self._file(name), self._file(new_name))
        self._file(new_name).chmod(0o660)

    def backup_copy(self, name: str, label: str) -> str:
        target = self.backups / f"{name}.{label}{SUFFIX}"
        _copy(self._file(name), target)
        return target.name

    def device(self, name: str) -> str:
        return str(self._file(name))

    def set_aside(self, name: str, stamp: int) -> None:
        overlay = self._overlay(name)
        if overlay.exists():
            self.views.close(self._file(name))
            overlay.rename(self._aside_file(name, stamp, OVERLAY))
            self._file(name).unlink(missing_ok=True)
        else:
            self._file(name).rename(self._aside_file(name, stamp))

    def aside(self) -> list[tuple[str, int]]:
        found = []
        for suffix in (SUFFIX, OVERLAY):
            for path in self.quarantine.glob(f"vol-*{suffix}"):
                name, _, stamp = path.name.removesuffix(suffix).rpartition(".")
                if stamp.isdigit():
                    found.append((name, int(stamp)))
        return sorted(found, key=lambda entry: entry[1])

    def wipe(self, name: str, stamp: int) -> None:
        for suffix in (SUFFIX, OVERLAY):
            self._aside_file(name, stamp, suffix).unlink(missing_ok=True)

    def bring_back(self, name: str, stamp: int) -> None:
        overlay = self._aside_file(name, stamp, OVERLAY)
        if overlay.exists():
            shutil.move(str(overlay), self._overlay(name))
            self.views.open(self._overlay(name), self._file(name))
        else:
            shutil.move(str(self._aside_file(name, stamp)), self._file(name))

    def set_owner(self, name: str, tenant: str, owner: str, volume_id: str) -> None:
        # Extended attributes travel with the file through quarantine (a rename).
        path = self._owner_file(name)
        try:
            for attribute, value in zip(OWNERSHIP_XATTRS, (tenant, owner, volume_id),
                                        strict=True):
                os.setxattr(path, attribute, value.encode())
        except OSError as exc:
            log.warning("the owner of %s is not kept (%s): an adopted or restored copy "
                        "goes to the default tenant", path.name, exc.strerror)

    def owner(self, name: str) -> tuple[str | None, str | None, str | None]:
        path = self._owner_file(name)
        found: list[str | None] = []
        for attribute in OWNERSHIP_XATTRS:
            try:
                found.append(os.getxattr(path, attribute).decode() or None)
            except OSError:
                found.append(None)
        return found[0], found[1], found[2]

    def _owner_file(self, name: str) -> Path:
        """The file that is the volume (a clone's overlay: its raw view is a mount)."""
        overlay = self._overlay(name)
        return overlay if overlay.exists() else self._file(name)

    def repair(self) -> None:
        """After a restart: a view for every clone (adopting running ones), then exports."""
        for overlay in sorted(self.pool.glob(f"vol-*{OVERLAY}")):
            self.views.open(overlay, self._file(overlay.name.removesuffix(OVERLAY)))
        super().repair()


def filepool_storage(config: Config, exporter: Exporter) -> FilePoolStorage:
    """Volumes as files in volumes_dir, deleted ones in its quarantine/."""
    return FilePoolStorage(config.volumes_path, config.volumes_path / "quarantine",
                           config.storage_capacity_gib, config.quarantine_seconds, exporter)

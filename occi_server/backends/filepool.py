"""Storage in a file pool: each volume is a sparse raw file in a directory.

Volumes are thin (the file system allocates on write) and raw, so that the same
bytes serve a local guest and any iSCSI initiator."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from occi_server.backends.iscsi import Exporter
from occi_server.backends.pool import GIB, PoolStorage, volume_stem
from occi_server.errors import BackendFailure

SUFFIX = ".img"
__all__ = ["GIB", "FilePoolStorage", "volume_name"]


def volume_name(volume_id: str) -> str:
    """The file name of a volume."""
    return volume_stem(volume_id) + SUFFIX


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
                 backups: Path | None = None) -> None:
        super().__init__(capacity_gib, grace_seconds, exporter)
        self.pool = pool
        self.quarantine = quarantine
        self.backups = backups or pool / "backups"
        for directory in (pool, quarantine, self.backups):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o755)  # QEMU (another user) opens the volumes

    @property
    def label(self) -> str:
        exported = f", exported over iSCSI with {self.exporter.name}" if self.exporter else ""
        return f"the file pool in {self.pool}{exported}"

    def _file(self, name: str) -> Path:
        return self.pool / f"{name}{SUFFIX}"

    def _aside_file(self, name: str, stamp: int) -> Path:
        return self.quarantine / f"{name}.{stamp}{SUFFIX}"

    def volumes(self) -> dict[str, int]:
        return {p.name.removesuffix(SUFFIX): p.stat().st_size
                for p in self.pool.glob(f"vol-*{SUFFIX}")}

    def size(self, name: str) -> int:
        return self._file(name).stat().st_size

    def pool_size(self) -> int:
        stats = os.statvfs(self.pool)
        return stats.f_blocks * stats.f_frsize

    def allocate(self, name: str, size: int) -> None:
        with self._file(name).open("xb") as handle:
            handle.truncate(size)
        self._file(name).chmod(0o660)

    def grow(self, name: str, size: int) -> None:
        os.truncate(self._file(name), size)

    def discard(self, name: str) -> None:
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
        self._file(name).rename(self._aside_file(name, stamp))

    def aside(self) -> list[tuple[str, int]]:
        found = []
        for path in self.quarantine.glob(f"vol-*{SUFFIX}"):
            name, _, stamp = path.name.removesuffix(SUFFIX).rpartition(".")
            if stamp.isdigit():
                found.append((name, int(stamp)))
        return sorted(found, key=lambda entry: entry[1])

    def wipe(self, name: str, stamp: int) -> None:
        self._aside_file(name, stamp).unlink(missing_ok=True)

    def bring_back(self, name: str, stamp: int) -> None:
        shutil.move(str(self._aside_file(name, stamp)), self._file(name))

"""Storage in an LVM volume group: each volume is a logical volume, driven by
the lvm2 commands (argument lists; the volume group and volume names are
validated, and every name a command sees derives from a volume id through a
fixed pattern).

Snapshots are LVM copy-on-write snapshots; quarantine renames a logical volume
to `<name>.q<deletion time>`; backups are sparse copies into a directory. A
volume cloned from an image is a full copy: a classic LVM snapshot cannot
outgrow its origin, and an image file is no logical volume."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from occi_server.backends.iscsi import Exporter
from occi_server.backends.pool import PoolStorage
from occi_server.errors import BackendFailure, BackendUnavailable
from occi_server.images.diskfile import qemu_img

if TYPE_CHECKING:
    from occi_server.config import Config

_VG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,126}")
_ASIDE = re.compile(r"^(vol-[A-Za-z0-9_-]+)\.q(\d+)$")
Runner = Callable[[Sequence[str]], str]
# Whose volume it is, as LV tags (they follow renames); base32 keeps any value
# within the characters a tag may hold.
OWNERSHIP_TAGS = ("occi_tenant=", "occi_owner=", "occi_id=")


def run_lvm(args: Sequence[str]) -> str:
    """Run an lvm2 command; its output, or BackendFailure with lvm's message."""
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=600,
                                env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                     "LVM_SUPPRESS_FD_WARNINGS": "1"})
    except FileNotFoundError:
        raise BackendUnavailable(f"{args[0]} is not installed (apt-get install lvm2)") from None
    if result.returncode != 0:
        raise BackendFailure(f"{args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


class LvmStorage(PoolStorage):
    name = "lvm"

    def __init__(self, volume_group: str, backups: Path, capacity_gib: float = 0,
                 grace_seconds: float = 7 * 24 * 3600, exporter: Exporter | None = None,
                 runner: Runner = run_lvm) -> None:
        if not _VG.fullmatch(volume_group):
            raise BackendFailure(f"{volume_group!r} is not a volume group name")
        super().__init__(capacity_gib, grace_seconds, exporter, backups / ".allocation.lock")
        self.vg = volume_group
        self.backups = backups
        self.run = runner
        backups.mkdir(parents=True, exist_ok=True)

    @property
    def label(self) -> str:
        exported = f", exported over iSCSI with {self.exporter.name}" if self.exporter else ""
        return f"the LVM volume group {self.vg}{exported}"

    def _lv(self, name: str) -> str:
        return f"{self.vg}/{name}"

    def _all(self) -> dict[str, int]:
        """Every logical volume of the group that is ours, quarantined ones too:
        name -> size in bytes (one lvs run)."""
        output = self.run(["lvs", "--noheadings", "--nosuffix", "--units", "b", "--separator",
                           ",", "-o", "lv_name,lv_size", self.vg])
        volumes = {}
        for line in output.splitlines():
            if "," not in line:
                continue
            name, size = (part.strip() for part in line.split(",", 1))
            if name.startswith("vol-"):
                volumes[name] = int(size)
        return volumes

    def volumes(self) -> dict[str, int]:
        return {name: size for name, size in self._all().items() if not _ASIDE.match(name)}

    def size(self, name: str) -> int:
        volumes = self._all()
        if name not in volumes:
            raise BackendFailure(f"no logical volume {self._lv(name)}")
        return volumes[name]

    def pool_size(self) -> int:
        output = self.run(["vgs", "--noheadings", "--nosuffix", "--units", "b", "-o", "vg_size",
                           self.vg])
        return int(output.strip())

    def allocate(self, name: str, size: int) -> None:
        self.run(["lvcreate", "--yes", "--wipesignatures", "y", "--name", name, "--size",
                  f"{size}b", self.vg])

    def clone(self, name: str, disk: Path, disk_format: str, size: int) -> None:
        self.allocate(name, size)
        try:
            qemu_img("convert", "-n", "-f", disk_format, "-O", "raw", str(disk),
                     self.device(name), doing=f"copying {disk.name} into {self._lv(name)}")
        except BaseException:
            self.discard(name)
            raise

    def grow(self, name: str, size: int) -> None:
        self.run(["lvextend", "--size", f"{size}b", self._lv(name)])

    def discard(self, name: str) -> None:
        self.run(["lvremove", "--yes", self._lv(name)])

    def copy(self, name: str, new_name: str) -> None:
        # A classic snapshot: copy-on-write, with room for the whole origin to change.
        self.run(["lvcreate", "--yes", "--snapshot", "--name", new_name, "--size",
                  f"{self.size(name)}b", self._lv(name)])

    def backup_copy(self, name: str, label: str) -> str:
        target = self.backups / f"{name}.{label}.img"
        try:
            qemu_img("convert", "-f", "raw", "-O", "raw", "-S", "4k", self.device(name),
                     str(target), doing=f"backing up {self._lv(name)}")
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target.name

    def device(self, name: str) -> str:
        return f"/dev/{self.vg}/{name}"

    def set_aside(self, name: str, stamp: int) -> None:
        self.run(["lvrename", self.vg, name, f"{name}.q{stamp}"])

    def aside(self) -> list[tuple[str, int]]:
        found = [(m.group(1), int(m.group(2))) for name in self._all()
                 if (m := _ASIDE.match(name))]
        return sorted(found, key=lambda entry: entry[1])

    def wipe(self, name: str, stamp: int) -> None:
        self.run(["lvremove", "--yes", self._lv(f"{name}.q{stamp}")])

    def bring_back(self, name: str, stamp: int) -> None:
        self.run(["lvrename", self.vg, f"{name}.q{stamp}", name])

    def set_owner(self, name: str, tenant: str, owner: str, volume_id: str) -> None:
        tags = [prefix + base64.b32encode(value.encode()).decode()
                for prefix, value in zip(OWNERSHIP_TAGS, (tenant, owner, volume_id), strict=True)
                if value]
        self.run(["lvchange", *(a for tag in tags for a in ("--addtag", tag)), self._lv(name)])

    def owner(self, name: str) -> tuple[str | None, str | None, str | None]:
        output = self.run(["lvs", "--noheadings", "-o", "lv_tags", self._lv(name)])
        tags = [tag.strip() for tag in output.strip().split(",")]
        found: list[str | None] = []
        for prefix in OWNERSHIP_TAGS:
            value = next((tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)),
                         None)
            try:
                found.append(base64.b32decode(value).decode() if value else None)
            except ValueError:  # binascii.Error and UnicodeDecodeError: not our tag
                found.append(None)
        return found[0], found[1], found[2]


def lvm_storage(config: Config, exporter: Exporter) -> LvmStorage:
    """Volumes as logical volumes of lvm_volume_group; backups in the data directory."""
    return LvmStorage(config.lvm_volume_group, config.data_path / "backups",
                      config.storage_capacity_gib, config.quarantine_seconds, exporter)

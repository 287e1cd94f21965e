"""Storage in a file pool: each volume is a sparse raw file in a directory.

Volumes are thin (the file system allocates on write) and raw, so that the same
bytes serve a local guest and any iSCSI initiator; the pool's capacity bounds
the sum of their sizes. A deleted volume is moved to quarantine, where it stays for a
grace period (an operator can restore it) before it is wiped. File names derive
from volume ids through a fixed pattern, never from anything else a client says."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from occi_server.backends.base import ActionOutcome, Attributes, StorageBackend, VolumeSource
from occi_server.backends.iscsi import Exporter
from occi_server.core import Entity
from occi_server.errors import BackendFailure, InsufficientStorage

GIB = 1024 ** 3
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,100}")
SUFFIX = ".img"


def volume_name(volume_id: str) -> str:
    """The file name of a volume: its id when that is plain, a digest otherwise."""
    if _SAFE.fullmatch(volume_id):
        return f"vol-{volume_id}{SUFFIX}"
    return f"vol-{hashlib.sha256(volume_id.encode()).hexdigest()[:40]}{SUFFIX}"


def _copy(source: Path, target: Path) -> None:
    """Copy-on-write where the file system supports it (reflink), else a sparse copy."""
    try:
        subprocess.run(["cp", "--reflink=auto", "--sparse=always", "--", str(source),
                        str(target)], check=True, capture_output=True, timeout=3600)
    except subprocess.CalledProcessError as exc:
        target.unlink(missing_ok=True)
        raise BackendFailure(f"copying {source.name} failed: "
                             f"{exc.stderr.decode(errors='replace').strip()}") from None


def volume_size(path: Path) -> int:
    """The size of a volume as a guest sees it (the sparse file's length)."""
    return path.stat().st_size


class FilePoolStorage(StorageBackend):
    name = "filepool"

    def __init__(self, pool: Path, quarantine: Path, capacity_gib: float = 0,
                 grace_seconds: float = 7 * 24 * 3600, exporter: Exporter | None = None,
                 backups: Path | None = None) -> None:
        self.pool = pool
        self.quarantine = quarantine
        self.backups = backups or pool / "backups"
        self.capacity_gib = capacity_gib
        self.grace_seconds = grace_seconds
        self.exporter = exporter
        for directory in (pool, quarantine, self.backups):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o755)  # QEMU (another user) opens the volumes

    @property
    def label(self) -> str:
        exported = f", exported over iSCSI with {self.exporter.name}" if self.exporter else ""
        return f"the file pool in {self.pool}{exported}"

    def repair(self) -> None:
        """After a crash: export every volume file, unexport targets without one."""
        if self.exporter is None:
            return
        names = {p.name.removesuffix(SUFFIX) for p in self.pool.glob(f"vol-*{SUFFIX}")}
        exported = self.exporter.exported()
        for name in sorted(names - exported):
            self.exporter.export(name, self.pool / f"{name}{SUFFIX}")
        for name in sorted(exported - names):
            self.exporter.unexport(name)

    def path(self, storage: Entity) -> Path:
        return self.pool / volume_name(storage.id)

    # ------------------------------------------------------------ capacity
    def capacity(self) -> int:
        if self.capacity_gib:
            return int(self.capacity_gib * GIB)
        stats = os.statvfs(self.pool)
        return stats.f_blocks * stats.f_frsize

    def committed(self) -> int:
        return sum(volume_size(p) for p in self.pool.glob(f"vol-*{SUFFIX}"))

    def _reserve(self, extra: int) -> None:
        capacity, committed = self.capacity(), self.committed()
        if committed + extra > capacity:
            raise InsufficientStorage(
                f"the storage pool holds {committed / GIB:g} of {capacity / GIB:g} GiB; "
                f"{extra / GIB:g} GiB more do not fit. Delete or shrink other volumes, or ask "
                "the operator for a larger pool")

    # ------------------------------------------------------------ lifecycle
    def create(self, storage: Entity) -> Attributes:
        self.reap()
        size = int(float(storage.attributes["occi.storage.size"]) * GIB)
        self._reserve(size)
        path = self.path(storage)
        if path.exists():
            raise BackendFailure(f"a volume file for {storage.location} exists already")
        with path.open("xb") as handle:
            handle.truncate(size)
        path.chmod(0o660)
        message = f"{size / GIB:g} GiB volume in the file pool"
        if self.exporter is not None:
            try:
                target = self.exporter.export(path.name.removesuffix(SUFFIX), path)
            except BaseException:
                path.unlink(missing_ok=True)  # an export failure leaves no volume behind
                raise
            message += f", iSCSI target {target.iqn}"
        return {"occi.storage.state": "online", "occi.storage.state.message": message}

    def act(self, storage: Entity, action: str, params: Attributes) -> ActionOutcome:
        if not self.path(storage).exists():
            raise BackendFailure(f"the volume file of {storage.location} is missing")
        state = {"online": "online", "offline": "offline"}[action]
        message = "ready" if state == "online" else "offline: it cannot be attached"
        return ActionOutcome({"occi.storage.state": state,
                              "occi.storage.state.message": message})

    def update(self, storage: Entity, changes: Attributes) -> Attributes:
        if "occi.storage.size" not in changes:
            return {}
        path = self.path(storage)
        current = volume_size(path)
        wanted = int(float(changes["occi.storage.size"]) * GIB)
        if wanted < current:
            raise BackendFailure(f"volumes only grow: {storage.location} has "
                                 f"{current / GIB:g} GiB")
        self._reserve(wanted - current)
        os.truncate(path, wanted)
        return {"occi.storage.state.message": f"resized to {wanted / GIB:g} GiB"}

    def delete(self, storage: Entity) -> None:
        """Move the volume to quarantine; `reap` wipes it after the grace period."""
        path = self.path(storage)
        if self.exporter is not None:
            self.exporter.unexport(path.name.removesuffix(SUFFIX))
        if path.exists():
            path.rename(self.quarantine / f"{path.stem}.{int(time.time())}{SUFFIX}")
        self.reap()

    def snapshot(self, storage: Entity, copy: Entity) -> Attributes:
        source, path = self.path(storage), self.path(copy)
        size = volume_size(source)
        self._reserve(size)
        _copy(source, path)
        path.chmod(0o660)
        message = f"copy of {storage.location}"
        if self.exporter is not None:
            try:
                self.exporter.export(path.name.removesuffix(SUFFIX), path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        return {"occi.storage.size": size / GIB, "occi.storage.state": "online",
                "occi.storage.state.message": message}

    def backup(self, storage: Entity) -> Attributes:
        source = self.path(storage)
        target = self.backups / f"{source.stem}.{time.strftime('%Y%m%dT%H%M%S')}{SUFFIX}"
        _copy(source, target)
        return {"occi.storage.state.message": f"backed up to {target.name}"}

    def target(self, storage: Entity):  # -> IscsiTarget | None
        """Where another host reaches the volume over iSCSI."""
        if self.exporter is None:
            return None
        return self.exporter.target(volume_name(storage.id).removesuffix(SUFFIX),
                                    self.exporter.LUN)

    def source(self, storage: Entity) -> VolumeSource | None:
        path = self.path(storage)
        if storage.attributes.get("occi.storage.state") != "online" or not path.exists():
            return None
        return VolumeSource(path=str(path), format="raw")

    # ------------------------------------------------------------ quarantine
    def quarantined(self) -> list[tuple[str, float, Path]]:
        """(volume file stem, deletion time, path) of every quarantined volume."""
        found = []
        for path in sorted(self.quarantine.glob(f"vol-*{SUFFIX}")):
            stem, _, stamp = path.name.removesuffix(SUFFIX).rpartition(".")
            if stamp.isdigit():
                found.append((stem, float(stamp), path))
        return found

    def reap(self, now: float | None = None) -> list[Path]:
        """Wipe quarantined volumes older than the grace period."""
        now = time.time() if now is None else now
        wiped = []
        for _, deleted, path in self.quarantined():
            if now - deleted >= self.grace_seconds:
                path.unlink(missing_ok=True)
                wiped.append(path)
        return wiped

    def restore(self, volume_id: str) -> int:
        """Put the newest quarantined copy of a volume back; returns its size in bytes."""
        stem = volume_name(volume_id).removesuffix(SUFFIX)
        copies = [entry for entry in self.quarantined() if entry[0] == stem]
        if not copies:
            raise BackendFailure(f"no quarantined volume {volume_id}")
        target = self.pool / f"{stem}{SUFFIX}"
        if target.exists():
            raise BackendFailure(f"volume {volume_id} exists already")
        shutil.move(str(copies[-1][2]), target)
        if self.exporter is not None:
            self.exporter.export(stem, target)
        return volume_size(target)

"""What every pool of volumes does the same way, whatever holds the bytes (a
directory of files, an LVM volume group): capacity, iSCSI export with
rollback and repair, quarantine, snapshots and backups. A pool supplies the
primitives.

Volume names derive from the server's key of each volume (`vol-<key>`),
never from anything a client says."""

from __future__ import annotations

import re
import time
from abc import abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path

from occi_server.backends.base import (
    ActionOutcome,
    Attributes,
    IscsiTarget,
    StorageBackend,
    VolumeSource,
)
from occi_server.backends.iscsi import Exporter
from occi_server.backends.locks import file_lock
from occi_server.core import Entity
from occi_server.errors import BackendFailure, InsufficientStorage
from occi_server.images import Image
from occi_server.kinds.infrastructure import GIB, STORAGE

_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


def volume_stem(volume: Entity) -> str:
    """The name of a volume in any pool, from the key the store gave it."""
    return stem_of_key(volume.key)


def stem_of_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BackendFailure(f"{key!r} is not a volume key of this server")
    return f"vol-{key}"


class PoolStorage(StorageBackend):
    observes = True  # volumes that vanish are noticed

    def __init__(self, capacity_gib: float, grace_seconds: float,
                 exporter: Exporter | None, lock_file: Path) -> None:
        self.capacity_gib = capacity_gib
        self.grace_seconds = grace_seconds
        self.exporter = exporter
        self.lock_file = lock_file

    def _allocating(self) -> AbstractContextManager[None]:
        """One allocation at a time, across threads and processes: the capacity
        check and the allocation it allows must not interleave with another's."""
        return file_lock(self.lock_file)

    # ------------------------------------------------------------ primitives
    @abstractmethod
    def volumes(self) -> dict[str, int]:
        """The live volumes and their sizes in bytes, read at once."""

    @abstractmethod
    def size(self, name: str) -> int:
        """The live volume's size in bytes; BackendFailure if there is none."""

    def names(self) -> set[str]:
        """The names of the live volumes."""
        return set(self.volumes())

    @abstractmethod
    def pool_size(self) -> int:
        """What the pool could hold at most, in bytes."""

    @abstractmethod
    def allocate(self, name: str, size: int) -> None:
        """A new, empty volume of `size` bytes (thin where the pool can);
        BackendFailure if the name is taken."""

    @abstractmethod
    def clone(self, name: str, disk: Path, disk_format: str, size: int) -> None:
        """A new volume of `size` bytes holding the image file `disk` (copy-on-write
        where the pool can)."""

    @abstractmethod
    def grow(self, name: str, size: int) -> None:
        """Make the live volume `size` bytes, keeping its bytes (never smaller)."""

    @abstractmethod
    def discard(self, name: str) -> None:
        """Remove a live volume at once (a create that could not complete)."""

    @abstractmethod
    def copy(self, name: str, new_name: str) -> None:
        """A new volume with the same bytes (copy-on-write where possible)."""

    @abstractmethod
    def backup_copy(self, name: str, label: str) -> str:
        """A full copy in the backup area; returns where it went."""

    @abstractmethod
    def device(self, name: str) -> str:
        """The local path of the volume's bytes (file or block device)."""

    @abstractmethod
    def set_aside(self, name: str, stamp: int) -> None:
        """Move a deleted volume into quarantine."""

    @abstractmethod
    def aside(self) -> list[tuple[str, int]]:
        """(name, deletion time) of every quarantined volume, oldest first."""

    @abstractmethod
    def wipe(self, name: str, stamp: int) -> None:
        """Remove the quarantined volume set aside at `stamp` for good."""

    @abstractmethod
    def bring_back(self, name: str, stamp: int) -> None:
        """Make the quarantined volume set aside at `stamp` live again, under its name."""

    @abstractmethod
    def set_owner(self, name: str, tenant: str, owner: str, volume_id: str) -> None:
        """Keep whose volume it is, and its id, beside its bytes (for adoption and
        restores)."""

    @abstractmethod
    def owner(self, name: str) -> tuple[str | None, str | None, str | None]:
        """(tenant, owner, id) kept with a live volume; None where nothing was kept."""

    def _keep_owner(self, name: str, volume: Entity) -> None:
        if volume.tenant:
            self.set_owner(name, volume.tenant, volume.owner or "", volume.id)

    # ------------------------------------------------------------ capacity
    def capacity(self) -> int:
        return int(self.capacity_gib * GIB) if self.capacity_gib else self.pool_size()

    def committed(self) -> int:
        return sum(self.volumes().values())

    def _reserve(self, extra: int) -> None:
        capacity, committed = self.capacity(), self.committed()
        if committed + extra > capacity:
            raise InsufficientStorage(
                f"the storage pool holds {committed / GIB:g} of {capacity / GIB:g} GiB; "
                f"{extra / GIB:g} GiB more do not fit. Delete or shrink other volumes, or ask "
                "the operator for a larger pool")

    # ------------------------------------------------------------ export
    def _exported(self, name: str) -> str:
        """Export a new volume; if that fails, the volume goes again."""
        if self.exporter is None:
            return ""
        try:
            target = self.exporter.export(name, self.device(name))
        except BaseException:
            self.discard(name)
            raise
        return f", iSCSI target {target.iqn}"

    def repair(self) -> None:
        """After a crash: export every volume, unexport targets without one."""
        if self.exporter is None:
            return
        names, exported = self.names(), self.exporter.exported()
        for name in sorted(names - exported):
            self.exporter.export(name, self.device(name))
        for name in sorted(exported - names):
            self.exporter.unexport(name)

    def health(self) -> str:
        volumes = self.volumes()
        exported = ""
        if self.exporter is not None:
            missing = set(volumes) - self.exporter.exported()
            if missing:
                raise BackendFailure(f"{len(missing)} volume(s) not exported over iSCSI "
                                     f"({self.exporter.name}), e.g. {sorted(missing)[0]}")
            exported = f", all exported with {self.exporter.name}"
        return f"{len(volumes)} volume(s) in {self.label}{exported}"

    def target(self, storage: Entity) -> IscsiTarget | None:
        """Where another host reaches the volume over iSCSI."""
        if self.exporter is None:
            return None
        return self.exporter.target(volume_stem(storage), self.exporter.LUN)

    # ------------------------------------------------------------ the backend
    def create(self, storage: Entity, image: Image | None = None) -> Attributes:
        self.reap()
        name = volume_stem(storage)
        size = int(float(storage.attributes["occi.storage.size"]) * GIB)
        if image is not None and not image.info.get("disk"):
            raise BackendFailure(f"image {image.term} has no disk file on this host")
        with self._allocating():
            self._reserve(size)
            if name in self.names():
                raise BackendFailure(f"a volume for {storage.location} exists already")
            if image is None:
                self.allocate(name, size)
                origin = ""
            else:
                self.clone(name, Path(image.info["disk"]), image.info.get("format", "raw"),
                           size)
                origin = f" cloned from image {image.term}"
            self._keep_owner(name, storage)
        message = f"{size / GIB:g} GiB volume{origin} in {self.label}" + self._exported(name)
        return {"occi.storage.state": "online", "occi.storage.state.message": message}

    def act(self, storage: Entity, action: str, params: Attributes) -> ActionOutcome:
        if volume_stem(storage) not in self.names():
            raise BackendFailure(f"the volume of {storage.location} is missing")
        state = {"online": "online", "offline": "offline"}[action]
        message = "ready" if state == "online" else "offline: it cannot be attached"
        return ActionOutcome({"occi.storage.state": state,
                              "occi.storage.state.message": message})

    def update(self, storage: Entity, changes: Attributes) -> Attributes:
        if "occi.storage.size" not in changes:
            return {}
        name = volume_stem(storage)
        current = self.size(name)
        wanted = int(float(changes["occi.storage.size"]) * GIB)
        if wanted < current:
            raise BackendFailure(f"volumes only grow: {storage.location} has "
                                 f"{current / GIB:g} GiB")
        with self._allocating():
            self._reserve(wanted - current)
            self.grow(name, wanted)
        if self.exporter is not None:
            self.exporter.resized(name, self.device(name))
        return {"occi.storage.state.message": f"resized to {wanted / GIB:g} GiB"}

    def delete(self, storage: Entity) -> None:
        """Unexport and quarantine; `reap` wipes after the grace period."""
        name = volume_stem(storage)
        if self.exporter is not None:
            self.exporter.unexport(name)
        if name in self.names():
            self.set_aside(name, int(time.time()))
        self.reap()

    def snapshot(self, storage: Entity, copy: Entity) -> Attributes:
        name, new_name = volume_stem(storage), volume_stem(copy)
        size = self.size(name)
        with self._allocating():
            self._reserve(size)
            self.copy(name, new_name)
            self._keep_owner(new_name, copy)
        message = f"copy of {storage.location}" + self._exported(new_name)
        return {"occi.storage.size": size / GIB, "occi.storage.state": "online",
                "occi.storage.state.message": message}

    def backup(self, storage: Entity) -> Attributes:
        where = self.backup_copy(volume_stem(storage), time.strftime("%Y%m%dT%H%M%S"))
        return {"occi.storage.state.message": f"backed up to {where}"}

    def source(self, storage: Entity) -> VolumeSource | None:
        name = volume_stem(storage)
        if storage.attributes.get("occi.storage.state") != "online" or name not in self.names():
            return None
        return VolumeSource(path=self.device(name), format="raw", iscsi=self.target(storage))

    # ------------------------------------------------------------ observation
    def current_state(self, storage: Entity) -> Attributes | None:
        if volume_stem(storage) not in self.names():
            return {"occi.storage.state": "error",
                    "occi.storage.state.message": f"the volume is not in {self.label}"}
        if storage.attributes.get("occi.storage.state") == "waiting":  # its job was cut short
            return {"occi.storage.state": "online", "occi.storage.state.message": "ready"}
        return None  # there; online or offline is the service's to say

    def orphans(self, known: list[Entity]) -> list[str]:
        return sorted(self.names() - {volume_stem(volume) for volume in known})

    def discard_orphan(self, name: str) -> None:
        if self.exporter is not None:
            self.exporter.unexport(name)
        self.set_aside(name, int(time.time()))

    def adopt_orphan(self, name: str) -> Entity | None:
        key = name.removeprefix("vol-")
        if not _KEY.fullmatch(key) or name != f"vol-{key}":
            return None  # no key gives this name
        tenant, owner, kept_id = self.owner(name)
        volume_id = kept_id or key
        return Entity(id=volume_id, key=key, kind=STORAGE.type_id, tenant=tenant, owner=owner,
                      location=f"{STORAGE.location}{volume_id}", attributes={
                          "occi.core.id": volume_id, "occi.storage.size": self.size(name) / GIB,
                          "occi.storage.state": "online",
                          "occi.storage.state.message": "adopted after a restart"})

    # ------------------------------------------------------------ quarantine
    def reap(self, now: float | None = None) -> list[str]:
        """Wipe quarantined volumes older than the grace period."""
        now = time.time() if now is None else now
        wiped = []
        for name, stamp in self.aside():
            if now - stamp >= self.grace_seconds:
                self.wipe(name, stamp)
                wiped.append(name)
        return wiped

    def restore(self, key: str) -> int:
        """Put the newest quarantined copy of a volume back; returns its size in bytes."""
        name, volume_id = stem_of_key(key), key
        copies = [stamp for aside, stamp in self.aside() if aside == name]
        if not copies:
            raise BackendFailure(f"no quarantined volume {volume_id}")
        if name in self.names():
            raise BackendFailure(f"volume {volume_id} exists already")
        self.bring_back(name, copies[-1])
        if self.exporter is not None:
            self.exporter.export(name, self.device(name))
        return self.size(name)

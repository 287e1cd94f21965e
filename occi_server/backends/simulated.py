"""The simulated backend: a fake infrastructure that keeps what it made.

No guest, volume or bridge exists, but the fake remembers each one it made
(its state, the disks and interfaces plugged into a guest, the interfaces
bound to a network) and refuses what a real backend refuses: acting on, or
attaching to, something it never made or already removed; making a name twice;
shrinking a volume; plugging a link in twice. State transitions, device names
and MAC addresses are produced as a real backend would report them, so the
whole protocol can be exercised without a hypervisor, and the contract suite
can fail against it. Every entity it serves carries the `backend#simulated`
mixin, and the service logs that it runs simulated.

What it made is kept as one small JSON file per object, named by the server's
key, in a directory of the data directory: every process of the service sees
the same infrastructure, as it would a real one. Without a directory (tests of
one process) it keeps it in memory."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from occi_server.backends.base import (
    ActionOutcome,
    Attributes,
    Backends,
    ComputeBackend,
    Context,
    NetworkBackend,
    Rule,
    StorageBackend,
    VolumeSource,
)
from occi_server.core import Entity, Kind
from occi_server.errors import BackendFailure, BackendUnavailable
from occi_server.images import Image
from occi_server.images.declared import DeclaredCatalogue
from occi_server.kinds.infrastructure import COMPUTE, NETWORK, PUBLIC_NETWORK, STORAGE

Record = dict[str, Any]
DEFAULT_ZONE = "default"  # the one zone of a site that names none


class _Behaviour:
    """How the simulated infrastructure behaves: how long each operation takes,
    and which fail, e.g. {"compute.create", "storage.act.online"}; "unavailable"
    makes every operation behave as if the infrastructure could not be reached."""

    def __init__(self, names: Iterable[str], delay: float = 0.0) -> None:
        self.names = frozenset(names)
        self.delay = delay

    def check(self, operation: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        if "unavailable" in self.names:
            raise BackendUnavailable("the simulated infrastructure is unreachable (configured)")
        if operation in self.names:
            raise BackendFailure(f"simulated failure of {operation} (configured)")


class _Objects:
    """The objects of one area (guests, volumes, bridges) by key: files in
    `directory`, or a dict when there is none."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, Record] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Record | None:
        if self.directory is None:
            with self._lock:
                found = self._memory.get(key)
                return _copy(found) if found is not None else None
        try:
            return json.loads((self.directory / f"{key}.json").read_text())
        except FileNotFoundError:
            return None

    def make(self, key: str, record: Record) -> bool:
        """Keep a new object; False, and nothing changed, if `key` has one
        already. Every process of the service makes through the same files: of
        two makers of one key, one wins."""
        if self.directory is None:
            with self._lock:
                if key in self._memory:
                    return False
                self._memory[key] = _copy(record)
                return True
        written = _written(self.directory, key, record)
        try:
            os.link(written, self.directory / f"{key}.json")  # refused if it exists
        except FileExistsError:
            return False
        finally:
            written.unlink()
        return True

    def put(self, key: str, record: Record) -> None:
        if self.directory is None:
            with self._lock:
                self._memory[key] = _copy(record)
            return
        os.replace(_written(self.directory, key, record), self.directory / f"{key}.json")

    def names(self) -> set[str]:
        if self.directory is None:
            with self._lock:
                return set(self._memory)
        return {path.stem for path in self.directory.glob("*.json")}

    def remove(self, key: str) -> None:
        if self.directory is None:
            with self._lock:
                self._memory.pop(key, None)
            return
        (self.directory / f"{key}.json").unlink(missing_ok=True)


def _copy(record: Record) -> Record:
    """A record kept in memory as a file keeps it: what its caller changes
    afterwards, or a reader changes, is not kept."""
    return json.loads(json.dumps(record))


def _written(directory: Path, key: str, record: Record) -> Path:
    """`record` in a file of its own in `directory`, to be put in place whole:
    readers see an object before or after, never half of it."""
    written = directory / f".{key}.{secrets.token_hex(4)}"
    text = json.dumps(record)
    try:
        written.write_text(text)
    except FileNotFoundError:  # the area's first object
        directory.mkdir(parents=True, exist_ok=True)
        written.write_text(text)
    return written


class _Simulation:
    name = "simulated"
    simulated = True
    kind: Kind
    what = "object"  # what the area calls its objects, in messages

    def __init__(self, failures: _Behaviour, directory: Path | None) -> None:
        self.failures = failures
        self.objects = _Objects(directory)

    @staticmethod
    def _key(entity: Entity) -> str:
        return entity.key or entity.id

    def _made(self, entity: Entity, record: Record) -> None:
        if not self.objects.make(self._key(entity), record):
            raise BackendFailure(f"a {self.what} named {self._key(entity)} exists already")

    def _existing(self, entity: Entity) -> Record:
        record = self.objects.get(self._key(entity))
        if record is None:
            raise BackendFailure(f"the {self.what} of {entity.location} does not exist")
        return record

    def _transition(self, entity: Entity, action: str,
                    wording: dict[str, str] | None = None) -> ActionOutcome:
        """Move the object along its kind's state machine, as a real backend reports it."""
        record = self._existing(entity)
        attribute = self.kind.states.attribute
        state = self.kind.states.target(action) or record["state"]
        record["state"] = state
        self.objects.put(self._key(entity), record)
        text = (wording or {}).get(state, state)
        return ActionOutcome({attribute: state, f"{attribute}.message": f"{text} (simulated)"})

    def update(self, entity: Entity, changes: Attributes) -> Attributes:
        """A change reaches what exists (volumes also check their size)."""
        self.failures.check(f"{self.kind.term}.update")
        self._existing(entity)
        return {}

    def delete(self, entity: Entity) -> None:
        self.failures.check(f"{self.kind.term}.delete")
        self.objects.remove(self._key(entity))


class SimulatedCompute(_Simulation, ComputeBackend):
    kind, what = COMPUTE, "guest"

    def __init__(self, failures: _Behaviour, directory: Path | None,
                 zones: list[str]) -> None:
        super().__init__(failures, directory)
        self._zones = zones

    def zones(self) -> list[str]:
        return list(self._zones)

    def create(self, compute: Entity, image: Image | None, context: Context,
               zone: str | None = None, apart_from: Sequence[str] = ()) -> Attributes:
        self.failures.check("compute.create")
        if zone is not None and zone not in self._zones:
            raise BackendFailure(f"no availability zone {zone} here")
        self._made(compute, {"state": "active", "disks": {}, "interfaces": {},
                             "image": image.term if image else None,
                             "zone": zone or self._zones[0]})
        return {
            "occi.compute.state": "active",
            "occi.compute.state.message": "running (simulated)",
            "occi.compute.architecture": compute.attributes.get("occi.compute.architecture")
            or (image.architecture if image else "x64"),
        }

    def act(self, compute: Entity, action: str, params: Attributes) -> ActionOutcome:
        self.failures.check(f"compute.act.{action}")
        outcome = self._transition(compute, action, {"active": "running", "inactive": "stopped"})
        if action == "save":
            title = params.get("name") or f"Saved from {compute.title or compute.id}"
            term = params.get("term") or f"saved-{secrets.token_hex(6)}"
            outcome.image = Image(term=str(term), title=str(title),
                                  info={"source": compute.location})
        return outcome

    def _plug(self, compute: Entity, link: Entity, where: str, what: Record) -> None:
        guest = self._existing(compute)
        if self._key(link) in guest[where]:
            raise BackendFailure(f"{link.location} is plugged into {compute.location} already")
        guest[where][self._key(link)] = what
        self.objects.put(self._key(compute), guest)

    def _unplug(self, compute: Entity, link: Entity, where: str) -> None:
        guest = self.objects.get(self._key(compute))
        if guest is not None and guest[where].pop(self._key(link), None) is not None:
            self.objects.put(self._key(compute), guest)

    def attach_storage(self, compute: Entity, link: Entity, storage: Entity,
                       source: VolumeSource | None) -> Attributes:
        self.failures.check("compute.attach_storage")
        self._plug(compute, link, "disks",
                   {"volume": storage.location,
                    "device": link.attributes.get("occi.storagelink.deviceid")})
        return {"occi.storagelink.state": "active"}

    def detach_storage(self, compute: Entity, link: Entity) -> None:
        self.failures.check("compute.detach_storage")
        self._unplug(compute, link, "disks")

    def storage_grown(self, compute: Entity, link: Entity, size_bytes: int) -> None:
        self.failures.check("compute.storage_grown")
        if self._key(link) not in self._existing(compute)["disks"]:
            raise BackendFailure(f"{link.location} is not plugged into {compute.location}")

    def attach_network(self, compute: Entity, link: Entity, network: Entity,
                       bridge: str | None) -> Attributes:
        self.failures.check("compute.attach_network")
        self._plug(compute, link, "interfaces",
                   {"network": network.location,
                    "mac": link.attributes.get("occi.networkinterface.mac")})
        return {"occi.networkinterface.state": "active"}

    def detach_network(self, compute: Entity, link: Entity) -> None:
        self.failures.check("compute.detach_network")
        self._unplug(compute, link, "interfaces")


class SimulatedStorage(_Simulation, StorageBackend):
    kind, what = STORAGE, "volume"

    def create(self, storage: Entity, image: Image | None = None) -> Attributes:
        self.failures.check("storage.create")
        self._made(storage, {"state": "online", "size": storage.attributes.get(
            "occi.storage.size"), "image": image.term if image else None})
        origin = f"clone of image {image.term}" if image else "volume ready"
        return {"occi.storage.state": "online",
                "occi.storage.state.message": f"{origin} (simulated)"}

    def act(self, storage: Entity, action: str, params: Attributes) -> ActionOutcome:
        self.failures.check(f"storage.act.{action}")
        return self._transition(storage, action)

    def update(self, storage: Entity, changes: Attributes) -> Attributes:
        self.failures.check("storage.update")
        volume = self._existing(storage)
        size = changes.get("occi.storage.size")
        if size is not None:
            if volume["size"] is not None and float(size) < float(volume["size"]):
                raise BackendFailure(f"a volume can only grow ({volume['size']:g} GiB now)")
            volume["size"] = size
            self.objects.put(self._key(storage), volume)
        return {}

    def snapshot(self, storage: Entity, copy: Entity) -> Attributes:
        self.failures.check("storage.snapshot")
        volume = self._existing(storage)
        self._made(copy, {**volume, "state": "online"})
        return {"occi.storage.state": "online",
                "occi.storage.state.message": f"copy of {storage.location} (simulated)"}

    def backup(self, storage: Entity) -> Attributes:
        self.failures.check("storage.backup")
        self._existing(storage)
        return {"occi.storage.state.message": "backed up (simulated)"}

    def source(self, storage: Entity) -> VolumeSource | None:
        return None  # no bytes exist to be reached


class SimulatedNetwork(_Simulation, NetworkBackend):
    kind, what = NETWORK, "bridge"

    def __init__(self, failures: _Behaviour, directory: Path | None,
                 guards: Path | None) -> None:
        super().__init__(failures, directory)
        self.guards = _Objects(guards)  # interface filters, by the interface's key
        self.publications = _Objects(guards / "published" if guards else None)  # by reservation

    def create(self, network: Entity) -> Attributes:
        self.failures.check("network.create")
        self._made(network, {"state": "active", "bound": {}})
        return {"occi.network.state": "active",
                "occi.network.state.message": "bridge up (simulated)"}

    def act(self, network: Entity, action: str, params: Attributes) -> ActionOutcome:
        self.failures.check(f"network.act.{action}")
        return self._transition(network, action)

    def bind(self, link: Entity, network: Entity) -> Attributes:
        self.failures.check("network.bind")
        bridge = self._existing(network)
        bridge["bound"][self._key(link)] = link.attributes.get("occi.networkinterface.address")
        self.objects.put(self._key(network), bridge)
        return {}

    def unbind(self, link: Entity, network: Entity) -> None:
        self.failures.check("network.unbind")
        bridge = self.objects.get(self._key(network))
        if bridge is not None and bridge["bound"].pop(self._key(link), None) is not None:
            self.objects.put(self._key(network), bridge)

    def bridge(self, network: Entity) -> str | None:
        return None  # no bridge exists

    def guard(self, link: Entity, network: Entity, rules: Sequence[Rule]) -> None:
        self.failures.check("network.guard")
        self._existing(network)
        mac = link.attributes.get("occi.networkinterface.mac")
        if not mac:
            raise BackendFailure(f"{link.location} has no MAC address to filter by")
        self.guards.put(self._key(link), {
            "network": self._key(network), "mac": mac,
            "rules": [[rule.direction, rule.protocol, rule.cidr, rule.ports] for rule in rules]})

    def unguard(self, key: str) -> None:
        self.failures.check("network.unguard")
        self.guards.remove(key)

    def guarded(self) -> set[str]:
        return self.guards.names()

    def publish(self, key: str, public: str, private: str, network: Entity) -> None:
        self.failures.check("network.publish")
        self._existing(network)
        if PUBLIC_NETWORK.type_id not in network.mixins:
            raise BackendFailure(f"{network.location} is not a public network")
        self.publications.put(key, {"public": public, "private": private,
                                    "network": self._key(network)})

    def unpublish(self, key: str, public: str) -> None:
        self.failures.check("network.unpublish")
        self.publications.remove(key)

    def published(self) -> dict[str, str]:
        found = {key: self.publications.get(key) for key in self.publications.names()}
        return {key: record["public"] for key, record in found.items() if record}

    def rules_of(self, link: Entity) -> list[Rule] | None:
        """The rules the interface's filter holds (None: it has none), for tests and demos."""
        found = self.guards.get(self._key(link))
        if found is None:
            return None
        return [Rule(direction, protocol, cidr, tuple(ports) if ports else None)
                for direction, protocol, cidr, ports in found["rules"]]


def simulated_backends(images: list[dict[str, Any]], failures: Iterable[str],
                       delay: float = 0.0, directory: Path | None = None,
                       zones: Iterable[str] = ()) -> Backends:
    """The fake infrastructure; `directory` keeps what it made (None: this process's
    memory); guests go in `zones` (none: one zone, "default")."""
    failing = _Behaviour(failures, delay)

    def area(name: str) -> Path | None:
        return directory / name if directory is not None else None

    return Backends(SimulatedCompute(failing, area("guests"), list(zones) or [DEFAULT_ZONE]),
                    SimulatedStorage(failing, area("volumes")),
                    SimulatedNetwork(failing, area("bridges"), area("guards")),
                    DeclaredCatalogue(images))

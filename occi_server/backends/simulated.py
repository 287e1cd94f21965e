"""The simulated backend: compute, storage and network carried out in process.

No guest, volume or bridge exists: state transitions, device names and MAC
addresses are produced as a real backend would report them, so the whole
protocol can be exercised without a hypervisor. Every entity it serves carries
the `backend#simulated` mixin, and the service logs that it runs simulated.

It keeps no state of its own (the store has it all), so several server
processes can share one database."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

from occi_server.backends.base import (
    ActionOutcome,
    Attributes,
    Backends,
    ComputeBackend,
    Context,
    NetworkBackend,
    StorageBackend,
    VolumeSource,
)
from occi_server.core import Entity, Kind
from occi_server.errors import BackendFailure, BackendUnavailable
from occi_server.images import Image
from occi_server.images.declared import DeclaredCatalogue
from occi_server.kinds.infrastructure import COMPUTE, NETWORK, STORAGE


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


class _Simulation:
    name = "simulated"
    simulated = True

    def __init__(self, failures: _Behaviour) -> None:
        self.failures = failures

    @staticmethod
    def transition(kind: Kind, entity: Entity, action: str,
                   wording: dict[str, str] | None = None) -> ActionOutcome:
        """The state the kind's state machine leads to, as a real backend reports it."""
        attribute = kind.states.attribute
        current = entity.attributes.get(attribute)
        state = kind.states.target(action) or current
        text = (wording or {}).get(state, state)
        return ActionOutcome({attribute: state, f"{attribute}.message": f"{text} (simulated)"})


class SimulatedCompute(_Simulation, ComputeBackend):
    def create(self, compute: Entity, image: Image | None, context: Context) -> Attributes:
        self.failures.check("compute.create")
        return {
            "occi.compute.state": "active",
            "occi.compute.state.message": "running (simulated)",
            "occi.compute.architecture": compute.attributes.get("occi.compute.architecture")
            or (image.architecture if image else "x64"),
        }

    def act(self, compute: Entity, action: str, params: Attributes) -> ActionOutcome:
        self.failures.check(f"compute.act.{action}")
        outcome = self.transition(COMPUTE, compute, action,
                                  {"active": "running", "inactive": "stopped"})
        if action == "save":
            title = params.get("name") or f"Saved from {compute.title or compute.id}"
            term = params.get("term") or f"saved-{secrets.token_hex(6)}"
            outcome.image = Image(term=str(term), title=str(title),
                                  info={"source": compute.location})
        return outcome

    def update(self, compute: Entity, changes: Attributes) -> Attributes:
        self.failures.check("compute.update")
        return {}

    def delete(self, compute: Entity) -> None:
        self.failures.check("compute.delete")

    def attach_storage(self, compute: Entity, link: Entity, storage: Entity,
                       source: VolumeSource | None) -> Attributes:
        self.failures.check("compute.attach_storage")
        return {"occi.storagelink.state": "active"}

    def detach_storage(self, compute: Entity, link: Entity) -> None:
        self.failures.check("compute.detach_storage")

    def storage_grown(self, compute: Entity, link: Entity, size_bytes: int) -> None:
        self.failures.check("compute.storage_grown")

    def attach_network(self, compute: Entity, link: Entity, network: Entity,
                       bridge: str | None) -> Attributes:
        self.failures.check("compute.attach_network")
        return {"occi.networkinterface.state": "active"}

    def detach_network(self, compute: Entity, link: Entity) -> None:
        self.failures.check("compute.detach_network")


class SimulatedStorage(_Simulation, StorageBackend):
    def create(self, storage: Entity, image: Image | None = None) -> Attributes:
        self.failures.check("storage.create")
        origin = f"clone of image {image.term}" if image else "volume ready"
        return {"occi.storage.state": "online",
                "occi.storage.state.message": f"{origin} (simulated)"}

    def act(self, storage: Entity, action: str, params: Attributes) -> ActionOutcome:
        self.failures.check(f"storage.act.{action}")
        return self.transition(STORAGE, storage, action)

    def update(self, storage: Entity, changes: Attributes) -> Attributes:
        self.failures.check("storage.update")
        return {}

    def delete(self, storage: Entity) -> None:
        self.failures.check("storage.delete")

    def snapshot(self, storage: Entity, copy: Entity) -> Attributes:
        self.failures.check("storage.snapshot")
        return {"occi.storage.state": "online",
                "occi.storage.state.message": f"copy of {storage.location} (simulated)"}

    def backup(self, storage: Entity) -> Attributes:
        self.failures.check("storage.backup")
        return {"occi.storage.state.message": "backed up (simulated)"}

    def source(self, storage: Entity) -> VolumeSource | None:
        return None  # no volume exists


class SimulatedNetwork(_Simulation, NetworkBackend):
    def create(self, network: Entity) -> Attributes:
        self.failures.check("network.create")
        return {"occi.network.state": "active",
                "occi.network.state.message": "bridge up (simulated)"}

    def act(self, network: Entity, action: str, params: Attributes) -> ActionOutcome:
        self.failures.check(f"network.act.{action}")
        return self.transition(NETWORK, network, action)

    def update(self, network: Entity, changes: Attributes) -> Attributes:
        self.failures.check("network.update")
        return {}

    def delete(self, network: Entity) -> None:
        self.failures.check("network.delete")

    def bind(self, link: Entity, network: Entity) -> Attributes:
        self.failures.check("network.bind")
        return {}

    def unbind(self, link: Entity, network: Entity) -> None:
        self.failures.check("network.unbind")

    def bridge(self, network: Entity) -> str | None:
        return None  # no bridge exists


def simulated_backends(images: list[dict[str, Any]], failures: Iterable[str],
                       delay: float = 0.0) -> Backends:
    failing = _Behaviour(failures, delay)
    return Backends(SimulatedCompute(failing), SimulatedStorage(failing),
                    SimulatedNetwork(failing), DeclaredCatalogue(images))

"""The interfaces every backend implements. One contract test suite
(tests/backends/) runs against each implementation.

Contracts shared by all methods:
- A method that raises leaves nothing behind on the infrastructure.
- Methods return the attribute values the infrastructure owns (states,
  addresses, device names); the service stores them.
- Deleting or detaching something that no longer exists succeeds; acting on
  it, or plugging anything into it, fails.
- Failures are reported by raising BackendFailure with a message for the user."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from occi_server.core import Entity, Kind
from occi_server.errors import BackendFailure
from occi_server.images import Catalogue, Image
from occi_server.kinds.infrastructure import COMPUTE, NETWORK, NETWORK_ADDRESSING, STORAGE
from occi_server.kinds.rules import Rule

Attributes = dict[str, Any]


@dataclass
class ActionOutcome:
    attributes: Attributes
    image: Image | None = None  # compute save: the new image


@dataclass(frozen=True)
class IscsiTarget:
    iqn: str
    portal: str  # host:port
    lun: int
    user: str
    secret: str

    def url(self) -> str:
        """The libiscsi/QEMU form: iscsi://user%secret@portal/iqn/lun."""
        return f"iscsi://{self.user}%{self.secret}@{self.portal}/{self.iqn}/{self.lun}"


@dataclass(frozen=True)
class VolumeSource:
    """Where a compute backend finds a volume: a local file or device for
    guests on the storage host, an iSCSI target for guests anywhere."""

    path: str | None
    format: str = "raw"
    iscsi: IscsiTarget | None = None


@dataclass(frozen=True)
class HostEntry:
    """A hypervisor host an operator added: its name, how libvirt reaches it,
    whether new guests stay off it (draining), and the SSH target the site's
    key logs in at (None: a host given by a libvirt URI)."""

    name: str
    uri: str
    draining: bool = False
    ssh_target: str | None = None


@dataclass(frozen=True)
class Context:
    """Contextualization data for a guest (cloud-init NoCloud)."""

    ssh_keys: tuple[str, ...] = ()
    user_data: bytes | None = None
    hostname: str | None = None


class Backend(ABC):
    name: str
    simulated = False
    observes = False  # whether current_state (and a compute's stats and console) tell anything
    # The attributes whose change update() carries out on the infrastructure;
    # other changes are the store's alone.
    takes: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """What serves the resources, for /-/ and logs."""
        return self.name

    def health(self) -> str:
        """What serves the resources, checked now; raises BackendUnavailable
        (or BackendFailure) saying what is wrong."""
        return self.label

    # Orphans: real objects of this backend that no stored entity accounts for
    # (left by a crash between the infrastructure's work and the store's commit).
    def orphans(self, known: list[Entity]) -> list[str]:
        """Names of the backend's objects that none of `known` accounts for."""
        return []

    def discard_orphan(self, name: str) -> None:
        """Remove an orphan (volumes go to quarantine, as deleted ones do)."""
        raise BackendFailure(f"the {self.name} backend has no object {name}")

    def adopt_orphan(self, name: str) -> Entity | None:
        """An entity describing the orphan, to be stored; None if it cannot be described."""
        return None

    def current_state(self, entity: Entity) -> Attributes | None:
        """The resource's real state now (a guest that stopped on its own, a
        bridge taken down); None when the backend cannot tell."""
        return None

    def finish_create(self, entity: Entity) -> Attributes | None:
        """The rest of a create whose process stopped midway, where what was
        made lets it be finished without making anything again; then its
        real state, as current_state."""
        return self.current_state(entity)


class ComputeBackend(Backend):
    requires_image = False  # whether a compute needs an os_tpl
    takes = frozenset({"occi.compute.cores", "occi.compute.memory"})

    @abstractmethod
    def zones(self) -> list[str]:
        """The availability zones guests can be placed in (groups of hosts)."""

    def follow_hosts(self, source: Callable[[], list[HostEntry]]) -> None:
        """Place guests on the hypervisor hosts `source` lists too (called again
        now and then); a backend without hosts of its own has nothing to do."""

    @abstractmethod
    def create(self, compute: Entity, image: Image | None, context: Context,
               zone: str | None = None, apart_from: Sequence[str] = ()) -> Attributes:
        """Define and boot the guest (on a host of `zone`, when given, and on
        none that runs a guest of `apart_from`, computes' keys: BackendFailure
        if no host can take it); returns at least occi.compute.state."""

    @abstractmethod
    def act(self, compute: Entity, action: str, params: Attributes) -> ActionOutcome:
        """Carry out start/stop/restart/suspend/save (save: a new image, named
        params["term"] when the service chose the name)."""

    @abstractmethod
    def update(self, compute: Entity, changes: Attributes) -> Attributes:
        """Apply changed attributes (cores, memory, hostname…; None = removed);
        raise BackendFailure if the guest cannot take them now."""

    @abstractmethod
    def delete(self, compute: Entity) -> None:
        """Destroy the guest and its ephemeral disks."""

    @abstractmethod
    def attach_storage(self, compute: Entity, link: Entity, storage: Entity,
                       source: VolumeSource | None) -> Attributes:
        """Attach a volume (from the storage backend's `source`); returns
        occi.storagelink.state."""

    @abstractmethod
    def detach_storage(self, compute: Entity, link: Entity) -> None:
        """Unplug the volume `link` attached (from a running guest at once, and
        from its definition); succeeds if it is not attached, or the guest is gone."""

    @abstractmethod
    def storage_grown(self, compute: Entity, link: Entity, size_bytes: int) -> None:
        """The volume `link` attaches grew to `size_bytes` (the storage backend
        has grown it): a running guest sees the new size now; one that is off
        sees it when it starts. BackendFailure if the guest could not be told."""

    @abstractmethod
    def attach_network(self, compute: Entity, link: Entity, network: Entity,
                       bridge: str | None) -> Attributes:
        """Plug an interface into the network backend's `bridge`; returns
        occi.networkinterface.state."""

    @abstractmethod
    def detach_network(self, compute: Entity, link: Entity) -> None:
        """Unplug the interface `link` made; succeeds if it is not plugged in,
        or the guest is gone."""

    # Observation, for backends whose guests change state on their own.
    def watch(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever a guest changes state on its own (idempotent;
        called again to re-arm after the infrastructure restarted)."""

    def stats(self, compute: Entity) -> Attributes:
        """Monitoring counters (occi_server.monitoring.*) of a running guest."""
        return {}

    def console(self, compute: Entity) -> str | None:
        """The guest's serial console output; None when there is none."""
        return None


class StorageBackend(Backend):
    takes = frozenset({"occi.storage.size"})

    @abstractmethod
    def create(self, storage: Entity, image: Image | None = None) -> Attributes:
        """Allocate the volume of occi.storage.size GiB, empty or a copy-on-write
        clone of `image` (never smaller than it); returns its state."""

    @abstractmethod
    def act(self, storage: Entity, action: str, params: Attributes) -> ActionOutcome:
        """Carry out online/offline (an offline volume has no `source`);
        BackendFailure if the volume does not exist."""

    @abstractmethod
    def update(self, storage: Entity, changes: Attributes) -> Attributes:
        """Apply changed attributes; a new occi.storage.size grows the volume
        (BackendFailure for a smaller one: volumes only grow)."""

    @abstractmethod
    def delete(self, storage: Entity) -> None:
        """Remove the volume (pools keep it in quarantine for a while first);
        succeeds if it does not exist."""

    @abstractmethod
    def snapshot(self, storage: Entity, copy: Entity) -> Attributes:
        """Copy the volume into the new storage resource `copy` (copy-on-write
        where the infrastructure can); returns the copy's attributes."""

    @abstractmethod
    def backup(self, storage: Entity) -> Attributes:
        """Copy the volume to the backup area; returns attributes to update."""

    @abstractmethod
    def source(self, storage: Entity) -> VolumeSource | None:
        """Where a compute on this host finds the volume; None if nowhere."""


class NetworkBackend(Backend):
    takes = NETWORK_ADDRESSING

    @abstractmethod
    def create(self, network: Entity) -> Attributes:
        """Create the network (bridge, DHCP); returns occi.network.state."""

    @abstractmethod
    def act(self, network: Entity, action: str, params: Attributes) -> ActionOutcome:
        """Carry out up/down."""

    @abstractmethod
    def update(self, network: Entity, changes: Attributes) -> Attributes:
        """Apply changed attributes (label, addresses…)."""

    @abstractmethod
    def delete(self, network: Entity) -> None:
        """Remove the bridge and its DHCP server; succeeds if they do not exist."""

    @abstractmethod
    def bind(self, link: Entity, network: Entity) -> Attributes:
        """Serve the interface on the network: the DHCP host entry that maps
        occi.networkinterface.mac to occi.networkinterface.address (both chosen
        and made unique by the service); returns attributes to update."""

    @abstractmethod
    def unbind(self, link: Entity, network: Entity) -> None:
        """Stop serving the interface (its lease and host entry go); succeeds
        if it is not served."""

    @abstractmethod
    def bridge(self, network: Entity) -> str | None:
        """The host bridge guests plug into; None if the network has none."""

    @abstractmethod
    def guard(self, link: Entity, network: Entity, rules: Sequence[Rule]) -> None:
        """Filter the interface `link` (by its occi.networkinterface.mac) on the
        network: it receives new connections and datagrams only as the inbound
        `rules` allow, and sends only as the outbound ones allow (everything
        when there are none); replies and DHCP always pass. Replaces the
        interface's previous filter at once."""

    @abstractmethod
    def unguard(self, key: str) -> None:
        """Remove the filter of the interface whose key is `key`; succeeds if it has none."""

    @abstractmethod
    def guarded(self) -> set[str]:
        """The keys of the interfaces whose filters are in place."""

    @abstractmethod
    def publish(self, key: str, public: str, private: str, network: Entity) -> None:
        """Reach the guest at `private` on the public `network` at the address
        `public`, and send its traffic from there (1:1 NAT on the site's
        uplink); `key` names the reservation. Replaces what `key` had."""

    @abstractmethod
    def unpublish(self, key: str, public: str) -> None:
        """Undo `publish`; succeeds if nothing is published under `key`."""

    @abstractmethod
    def published(self) -> dict[str, str]:
        """What is published now: the public address under each key."""


@dataclass(frozen=True)
class Backends:
    compute: ComputeBackend
    storage: StorageBackend
    network: NetworkBackend
    images: Catalogue  # the site's: computes boot them, volumes are cloned from them

    def areas(self) -> list[tuple[Kind, Backend]]:
        """Each resource kind with the backend that serves it."""
        return [(COMPUTE, self.compute), (STORAGE, self.storage), (NETWORK, self.network)]

    def for_kind(self, kind_id: str) -> Backend | None:
        return next((backend for kind, backend in self.areas() if kind.type_id == kind_id),
                    None)

    @property
    def simulated(self) -> bool:
        return any(backend.simulated for _, backend in self.areas())

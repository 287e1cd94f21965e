"""Compute on libvirt (QEMU/KVM or TCG).

Each compute is a persistent domain named `occi-<key>` (the key the store
gave it, never the client's id) whose boot disk is a qcow2 overlay on its
image, with a NoCloud seed and a serial console log. States are read back
from libvirt after every operation, never assumed. A site may have several
hypervisor hosts: a new guest goes to the answering host with room for it
running the fewest guests (hosts.py); a host elsewhere gets the guest's files
and images from the frontend (storage.py), and guests move between hosts
with their disks (migration.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import libvirt

from occi_server.backends.base import (
    ActionOutcome,
    Attributes,
    ComputeBackend,
    Context,
    HostEntry,
    VolumeSource,
)
from occi_server.backends.libvirt import secrets
from occi_server.backends.libvirt.accel import Accelerator
from occi_server.backends.libvirt.domain import (
    KIB_PER_GIB,
    DomainSpec,
    devices_matching,
    direct_boot,
    disk_xml,
    domain_xml,
    interface_xml,
    iscsi_disk_xml,
    location_of,
    ownership_of,
    parse,
    resized,
    secret_usages,
)
from occi_server.backends.libvirt.fabric import Fabric
from occi_server.backends.libvirt.hosts import (
    Bounds,
    Host,
    Hosts,
    message,
    start_event_loop,
)
from occi_server.backends.libvirt.migration import move
from occi_server.backends.libvirt.seed import seed_iso
from occi_server.backends.libvirt.ssh import Target
from occi_server.backends.libvirt.storage import (
    BootImage,
    GuestFiles,
    GuestPaths,
    LocalFiles,
    files_on,
)
from occi_server.config import CHOICES
from occi_server.core import Entity
from occi_server.errors import BackendFailure, BackendUnavailable
from occi_server.images import Image
from occi_server.images.catalogue import ImageCatalogue
from occi_server.images.diskfile import virtual_size
from occi_server.kinds.infrastructure import COMPUTE, GIB

log = logging.getLogger("occi_server.libvirt")
PREFIX = "occi-"
SHUTDOWN_RETRY_SECONDS = 10.0  # Nova's shutdown_retry_interval
# How guests reach volumes: the local file or device (storage on this host), or
# iSCSI (storage on another host; QEMU opens the target with libiscsi).
VOLUME_ACCESS = CHOICES["volume_access"]

_STATE = {
    libvirt.VIR_DOMAIN_NOSTATE: ("error", "no state"),
    libvirt.VIR_DOMAIN_RUNNING: ("active", "running"),
    libvirt.VIR_DOMAIN_BLOCKED: ("active", "running (blocked on a resource)"),
    libvirt.VIR_DOMAIN_PAUSED: ("suspended", "paused"),
    libvirt.VIR_DOMAIN_SHUTDOWN: ("active", "shutting down"),
    libvirt.VIR_DOMAIN_SHUTOFF: ("inactive", "shut off"),
    libvirt.VIR_DOMAIN_CRASHED: ("error", "crashed"),
    libvirt.VIR_DOMAIN_PMSUSPENDED: ("suspended", "suspended by the guest"),
}
_UNDEFINE = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
             | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def _undefine(domain: libvirt.virDomain) -> None:
    """Remove the definition with its saved state, snapshots' metadata and NVRAM
    (a host whose driver knows no NVRAM refuses that flag: then without it)."""
    try:
        domain.undefineFlags(_UNDEFINE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG,
                                        libvirt.VIR_ERR_NO_SUPPORT):
            raise
        domain.undefineFlags(_UNDEFINE)


class LibvirtCompute(ComputeBackend):
    name = "libvirt"
    requires_image = True
    observes = True

    def __init__(self, uris: list[str], instances: Path, catalogue: ImageCatalogue,
                 accelerator: Accelerator, shutdown_timeout: float = 60.0,
                 volume_access: str = "local", zones: dict[str, list[str]] | None = None,
                 cpu_ratio: float = 16.0, fabric: Fabric | None = None) -> None:
        if volume_access not in VOLUME_ACCESS:
            raise BackendFailure(f"volume_access must be one of {', '.join(VOLUME_ACCESS)}")
        self.volume_access = volume_access
        self.hosts = Hosts(uris, PREFIX, zones, cpu_ratio)
        self.fabric = fabric  # networks on the hosts reached over SSH
        self.instances = instances
        self.catalogue = catalogue
        self.accelerator = accelerator
        self.shutdown_timeout = shutdown_timeout
        # Host URI -> its connection for lifecycle events, and the one registered.
        self._events: dict[str, Host] = {}
        self._registered: dict[str, libvirt.virConnect] = {}
        instances.mkdir(parents=True, exist_ok=True)

    @property
    def label(self) -> str:
        return f"libvirt, QEMU with {self.accelerator.label}"

    # ------------------------------------------------------------ hosts
    def health(self) -> str:
        answers, failing = [], []
        for host in self.hosts.hosts:
            try:
                version = host.connection().getLibVersion()
            except (BackendUnavailable, libvirt.libvirtError) as exc:
                failing.append(f"{host.name}: {getattr(exc, 'message', None) or exc}")
                continue
            major, minor = divmod(version // 1000, 1000)
            answers.append(f"libvirt {major}.{minor} at {host.name}")
        if failing:
            raise BackendUnavailable("libvirt does not answer at " + "; ".join(failing))
        return f"{', '.join(answers)}, QEMU with {self.accelerator.label}"

    def _domain(self, compute: Entity) -> libvirt.virDomain | None:
        return self.hosts.domain(PREFIX + compute.key)

    def _existing(self, compute: Entity) -> libvirt.virDomain:
        domain = self._domain(compute)
        if domain is None:
            raise BackendFailure(f"the guest of {compute.location} no longer exists in libvirt")
        return domain

    # ------------------------------------------------------------ lifecycle
    def zones(self) -> list[str]:
        return list(self.hosts.zones)

    def follow_hosts(self, source: Callable[[], list[HostEntry]]) -> None:
        self.hosts.follow(source)

    def create(self, compute: Entity, image: Image | None, context: Context,
               zone: str | None = None, apart_from: Sequence[str] = ()) -> Attributes:
        if image is None or "disk" not in image.info:
            raise BackendFailure("the OS template has no disk image on this host")
        memory_kib = int(float(compute.attributes.get("occi.compute.memory") or 1.0)
                         * KIB_PER_GIB)
        vcpus = int(compute.attributes.get("occi.compute.cores") or 1)
        host = self.hosts.place(memory_kib, vcpus, zone,
                                avoid=frozenset(PREFIX + key for key in apart_from))
        connection = host.connection()
        files = self._files(host)
        disk_format = image.info.get("format", "qcow2")
        boot = BootImage(Path(image.info["disk"]), disk_format,
                         *(Path(image.info[name]) if name in image.info else None
                           for name in ("kernel", "initrd")))
        size_gib = compute.attributes.get("occi.compute.ephemeral_storage.size")
        size = max(virtual_size(boot.disk, disk_format), int((size_gib or 0) * GIB))
        seed = seed_iso(compute.key, context.hostname or f"vm-{compute.key[:8]}", context)
        try:
            with files.held():  # its image stays until the guest is defined
                paths = files.make(compute.key, boot, size, seed)
                spec = self._spec(compute, paths, image.info.get("cmdline"), host)
                domain = connection.defineXML(domain_xml(spec))
            self.hosts.placed(spec.name, host)
            try:
                domain.create()
            except libvirt.libvirtError:
                _undefine(domain)
                raise
        except libvirt.libvirtError as exc:
            files.discard(compute.key)
            raise BackendFailure(f"libvirt could not start the guest: {message(exc)}") from None
        except BackendFailure:
            files.discard(compute.key)
            raise
        return {**self._read_state(domain), "occi.compute.architecture":
                compute.attributes.get("occi.compute.architecture") or image.architecture}

    def _files(self, host: Host | None) -> GuestFiles:
        """The guest files of `host` (of this machine when no host is known)."""
        if host is None:
            return LocalFiles(self.instances)
        return files_on(host, self.instances, self.catalogue.directory)

    def _spec(self, compute: Entity, paths: GuestPaths, cmdline: str | None,
              host: Host) -> DomainSpec:
        values = compute.attributes
        return DomainSpec(
            name=PREFIX + compute.key,
            title=str(values.get("occi.core.title") or compute.id),
            location=compute.location, tenant=compute.tenant, owner=compute.owner,
            memory_gib=float(values.get("occi.compute.memory") or 1.0),
            vcpus=int(values.get("occi.compute.cores") or 1),
            shares=values.get("occi.compute.share"),
            cpu_fraction=self._cpu_fraction(values.get("occi.compute.speed"), host),
            accelerator=self.accelerator.domain_type,
            disk=paths.disk, disk_format="qcow2", seed=paths.seed, console_log=paths.console,
            kernel=paths.kernel, initrd=paths.initrd if paths.kernel else None,
            cmdline=cmdline,
        )

    @staticmethod
    def _cpu_fraction(speed_ghz: float | None, host: Host) -> float | None:
        """occi.compute.speed as a CPU bandwidth cap: a 1 GHz vCPU on a 2 GHz host
        may use half of a host CPU. None when no cap applies."""
        if not speed_ghz:
            return None
        host_mhz = host.connection().getInfo()[3]
        if not host_mhz or speed_ghz * 1000 >= host_mhz:
            return None
        return speed_ghz * 1000 / host_mhz

    def act(self, compute: Entity, action: str, params: Attributes) -> ActionOutcome:
        domain = self._existing(compute)
        method = params.get("method")
        try:
            handler: Callable[[libvirt.virDomain, Any], str | None] = getattr(
                self, f"_{action}")
        except AttributeError:
            raise BackendFailure(f"libvirt cannot {action}") from None
        try:
            note = handler(domain, method)
        except libvirt.libvirtError as exc:
            raise BackendFailure(f"{action} failed: {message(exc)}") from None
        attributes = self._read_state(domain)
        if note:
            attributes["occi.compute.state.message"] += f" ({note})"
        outcome = ActionOutcome(attributes)
        if action == "save":
            outcome.image = self._save_image(compute, domain, params)
        return outcome

    def _start(self, domain: libvirt.virDomain, _method: Any) -> None:
        state = domain.state()[0]
        if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
            domain.resume()
        elif not domain.isActive():
            domain.create()  # restores a managed save (hibernate) if there is one

    def _stop(self, domain: libvirt.virDomain, method: Any) -> str | None:
        if not domain.isActive():
            return None
        if method == "poweroff":
            domain.destroy()
            return None
        flags = libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN if method == "acpioff" else 0
        if domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            domain.resume()
        if self._shut_down(domain, flags, self.shutdown_timeout):
            return None
        domain.destroy()
        return f"did not shut down within {self.shutdown_timeout:g} s; powered off"

    def _restart(self, domain: libvirt.virDomain, method: Any) -> None:
        if method == "cold":
            domain.destroy()
            domain.create()
        elif method == "warm":
            domain.reset()
        else:
            domain.reboot(0)

    def _suspend(self, domain: libvirt.virDomain, method: Any) -> None:
        if method == "hibernate":
            domain.managedSave(0)
        else:
            domain.suspend()

    def _save(self, domain: libvirt.virDomain, method: Any) -> None:
        if method == "deferred" and domain.isActive():
            raise BackendFailure("a deferred save copies the disk of a stopped compute; stop "
                                 "it first, or save with method=hot")

    def _save_image(self, compute: Entity, domain: libvirt.virDomain,
                    params: Attributes) -> Image:
        """Copy the boot disk, flattened, into the catalogue as a new image."""
        term = str(params.get("term") or f"saved-{compute.key}-{int(time.time())}")
        target = self.catalogue.directory / f"{term}.qcow2"
        files = self._files(self.hosts.where(domain.name()))
        paused = domain.isActive() and domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        if paused:
            domain.suspend()  # a consistent copy of a running guest's disk
        try:
            files.disk_copy(compute.key, target)
        finally:
            if paused:
                domain.resume()
        title = str(params.get("name") or f"Saved from {compute.title or compute.id}")
        metadata: dict[str, str] = {"title": title, "disk": target.name, "format": "qcow2",
                                    "description": f"saved from {compute.location}"}
        # A guest booted directly keeps booting so: its kernel and initrd are
        # copied beside the new image (the original image may go away).
        boot = direct_boot(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        for key, suffix in (("kernel", "vmlinuz"), ("initrd", "initrd")):
            if key in boot:
                copy = self.catalogue.directory / f"{term}-{suffix}"
                shutil.copyfile(files.frontend_file(Path(boot[key])), copy)
                metadata[key] = copy.name
        if "cmdline" in boot:
            metadata["cmdline"] = boot["cmdline"]
        (self.catalogue.directory / f"{term}.json").write_text(
            json.dumps(metadata, indent=2) + "\n")
        image = self.catalogue.find(term)
        if image is None:
            raise BackendFailure("the saved image did not enter the catalogue")
        return image

    @staticmethod
    def _shut_down(domain: libvirt.virDomain, flags: int, timeout: float) -> bool:
        """Ask the guest to shut down, again every SHUTDOWN_RETRY_SECONDS (as
        Nova does): a press of the power button before the guest's OS listens
        for it, early in its boot, is lost. True once the guest is off."""
        deadline = time.monotonic() + timeout
        domain.shutdownFlags(flags)
        asked = time.monotonic()
        while time.monotonic() < deadline:
            if not domain.isActive():
                return True
            if time.monotonic() - asked >= SHUTDOWN_RETRY_SECONDS:
                with contextlib.suppress(libvirt.libvirtError):  # it may have gone off meanwhile
                    domain.shutdownFlags(flags)
                asked = time.monotonic()
            time.sleep(0.2)
        return not domain.isActive()

    def update(self, compute: Entity, changes: Attributes) -> Attributes:
        sizes = {k: v for k, v in changes.items()
                 if k in ("occi.compute.cores", "occi.compute.memory")}
        if not sizes:
            return {}
        domain = self._existing(compute)
        values = {**compute.attributes, **sizes}
        try:
            xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            domain.connect().defineXML(resized(
                xml, int(values.get("occi.compute.cores") or 1),
                float(values.get("occi.compute.memory") or 1.0)))
        except libvirt.libvirtError as exc:
            raise BackendFailure(f"libvirt refused the new size: {message(exc)}") from None
        attributes = self._read_state(domain)
        if domain.isActive():
            attributes["occi.compute.state.message"] += " (new size applies at the next start)"
        return attributes

    def delete(self, compute: Entity) -> None:
        domain = self._domain(compute)
        host = self.hosts.where(PREFIX + compute.key) if domain is not None else None
        usages: list[str] = []
        xml = ""
        connection = domain.connect() if domain is not None else None
        try:
            if domain is not None:
                xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                usages = secrets.of_domain(xml)
                if domain.isActive():
                    domain.destroy()
                _undefine(domain)
        except libvirt.libvirtError as exc:
            raise BackendFailure(f"libvirt could not remove the guest: {message(exc)}") \
                from None
        if connection is not None:
            secrets.drop(connection, usages)
        if domain is not None:
            self._retract(host, devices_matching(xml, "interface", lambda _: True))
        self._files(host).discard(compute.key)

    # ------------------------------------------------------------ devices
    def attach_storage(self, compute: Entity, link: Entity, storage: Entity,
                       source: VolumeSource | None) -> Attributes:
        if source is None:
            raise BackendFailure(f"{storage.location} has no volume a guest can attach")
        device = str(link.attributes.get("occi.storagelink.deviceid", "/dev/vdb"))
        dev, serial = device.rpartition("/")[2], link.key[:20]
        if source.path is not None and self.volume_access == "local":
            self._attach(compute, disk_xml(Path(source.path), source.format, dev, serial))
            return {"occi.storagelink.state": "active"}
        if source.iscsi is None:
            raise BackendFailure(f"{storage.location} is not exported over iSCSI, and guests "
                                 "here reach volumes over iSCSI only")
        usage = f"occi-{source.iscsi.iqn}"
        connection = self._existing(compute).connect()  # the secret lives on the guest's host
        secrets.keep(connection, usage, source.iscsi.secret.encode(),
                     f"CHAP secret of {storage.location}")
        try:
            self._attach(compute, iscsi_disk_xml(source.iscsi, dev, serial, usage))
        except BaseException:
            secrets.drop(connection, [usage])
            raise
        return {"occi.storagelink.state": "active"}

    def detach_storage(self, compute: Entity, link: Entity) -> None:
        domain = self._domain(compute)
        detached = self._detach_matching(compute, "disk",
                                         lambda e: e.findtext("serial") == link.key[:20])
        if domain is not None:
            secrets.drop(domain.connect(),
                         [usage for device in detached for usage in secret_usages(device)])

    def storage_grown(self, compute: Entity, link: Entity, size_bytes: int) -> None:
        domain = self._existing(compute)
        if not domain.isActive():
            return  # QEMU reads the size when the guest starts
        serial = link.key[:20]
        for device in devices_matching(domain.XMLDesc(0), "disk",
                                       lambda e: e.findtext("serial") == serial):
            target = parse(device).find("target")
            if target is None:
                continue
            try:
                domain.blockResize(target.get("dev"), size_bytes,
                                   libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            except libvirt.libvirtError as exc:
                raise BackendFailure(f"the guest could not be told the new size: "
                                     f"{message(exc)}") from None

    def attach_network(self, compute: Entity, link: Entity, network: Entity,
                       bridge: str | None) -> Attributes:
        if not bridge:
            raise BackendFailure(f"{network.location} has no bridge on this host")
        mac = str(link.attributes["occi.networkinterface.mac"])
        target = self._ssh_target(compute)
        if target is not None:
            if self.fabric is None:
                raise BackendFailure("a guest on another host reaches networks of the bridge "
                                     "backend only")
            self.fabric.extend(bridge, target)
        try:
            self._attach(compute, interface_xml(mac, bridge, isolated=target is not None))
        except BaseException:
            if target is not None and self.fabric is not None:
                self.fabric.retract(bridge, target)
            raise
        return {"occi.networkinterface.state": "active"}

    def detach_network(self, compute: Entity, link: Entity) -> None:
        mac = link.attributes.get("occi.networkinterface.mac")
        detached = self._detach_matching(
            compute, "interface", lambda e: any(m.get("address") == mac for m in e.findall("mac")))
        self._retract(self.hosts.where(PREFIX + compute.key), detached)

    def _ssh_target(self, compute: Entity) -> Target | None:
        """Where the guest's host is reached over SSH (None: a host of the
        configuration, whose bridges are the network backend's own)."""
        self._existing(compute)
        host = self.hosts.where(PREFIX + compute.key)
        return host.ssh_target if host is not None else None

    def _retract(self, host: Host | None, interfaces: list[str]) -> None:
        """The networks of `interfaces` leave `host` if no other guest there is
        on them (best effort: a failure is logged, the bridge stays)."""
        if host is None or host.ssh_target is None or self.fabric is None:
            return
        for bridge in _bridges(interfaces):
            try:
                self.fabric.retract(bridge, host.ssh_target)
            except (BackendFailure, BackendUnavailable) as exc:
                log.warning("bridge %s left on %s: %s", bridge, host.name, exc)

    # ------------------------------------------------------------ moves
    def evacuate(self, host_name: str, bounds: Mapping[str, Bounds] | None = None) -> list[str]:
        """Move every guest of ours off host `host_name` (draining: no new guest
        goes there), each to the host placement picks within its bounds (by
        guest key: its zone, its anti-affinity group); a running guest moves
        live. Returns a line per guest moved."""
        [source] = [host for host in self.hosts.hosts if host.name == host_name] or [None]
        if source is None:
            raise BackendFailure(f"no host {host_name}")
        moved = []
        for name in source.guests(PREFIX):
            domain = source.connection().lookupByName(name)
            _, max_kib, _, vcpus, _ = domain.info()
            kept = (bounds or {}).get(name.removeprefix(PREFIX), Bounds())
            destination = self.hosts.place(
                max_kib, vcpus, kept.zone, away_from=source,
                avoid=frozenset(PREFIX + k for k in kept.apart_from))
            moved.append(self._move(domain, source, destination))
        return moved

    def move_guest(self, compute: Entity, to: str | None = None,
                   bounds: Bounds | None = None) -> str:
        """Move the guest of `compute` to host `to`, or to the host placement
        picks (another than its own), within its `bounds`; a running guest
        moves live."""
        domain = self._existing(compute)
        source = self.hosts.where(domain.name())
        if source is None:
            raise BackendFailure(f"the host of {compute.location} is not known")
        if to == source.name:
            raise BackendFailure(f"{compute.location} is on {to} already")
        _, max_kib, _, vcpus, _ = domain.info()
        bounds = bounds or Bounds()
        destination = self.hosts.place(
            max_kib, vcpus, bounds.zone, only=to, away_from=source,
            avoid=frozenset(PREFIX + key for key in bounds.apart_from))
        return f"{compute.location}: " + self._move(domain, source, destination)

    def _move(self, domain: libvirt.virDomain, source: Host, destination: Host) -> str:
        """Move one guest, its networks reaching the destination first and
        leaving the source after."""
        name = domain.name()
        interfaces = devices_matching(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                                      "interface", lambda _: True)
        if destination.ssh_target is not None and self.fabric is not None:
            for bridge in _bridges(interfaces):
                self.fabric.extend(bridge, destination.ssh_target)
        move(domain, name.removeprefix(PREFIX), source, destination,
             (self._files(source), self._files(destination)))
        self.hosts.placed(name, destination)
        self._retract(source, interfaces)
        return f"{name} moved from {source.name} to {destination.name}"

    def _attach(self, compute: Entity, xml: str) -> None:
        domain = self._existing(compute)
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if domain.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        try:
            domain.attachDeviceFlags(xml, flags)
        except libvirt.libvirtError as exc:
            raise BackendFailure(f"libvirt could not attach the device: {message(exc)}") \
                from None

    def _detach_matching(self, compute: Entity, tag: str,
                         matches: Callable[[ET.Element], bool]) -> list[str]:
        """Detach from the running guest and from the persistent definition,
        each where the device is still present. Gone already is done. Returns
        the XML of the devices detached."""
        domain = self._domain(compute)
        if domain is None:
            return []
        detached: list[str] = []
        views = [(libvirt.VIR_DOMAIN_AFFECT_CONFIG,
                  domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))]
        if domain.isActive():
            views.append((libvirt.VIR_DOMAIN_AFFECT_LIVE, domain.XMLDesc(0)))
        for flags, xml in views:
            for device in devices_matching(xml, tag, matches):
                try:
                    domain.detachDeviceFlags(device, flags)
                except libvirt.libvirtError as exc:
                    refusal = message(exc)
                    if "not found" in refusal or "in the process of unplug" in refusal:
                        continue
                    raise BackendFailure(f"libvirt could not detach the device: {refusal}") \
                        from None
                detached.append(device)
        return detached

    # ------------------------------------------------------------ observation
    def _read_state(self, domain: libvirt.virDomain) -> Attributes:
        state, _reason = domain.state()
        occi_state, message = _STATE.get(state, ("error", f"unknown libvirt state {state}"))
        if state == libvirt.VIR_DOMAIN_SHUTOFF and domain.hasManagedSaveImage(0):
            occi_state, message = "suspended", "hibernated"
        return {"occi.compute.state": occi_state,
                "occi.compute.state.message": f"{message} ({self.accelerator.label})"}

    def watch(self, wake: Callable[[], None]) -> None:
        """Lifecycle events of our domains, on any host, call `wake`; each host's
        on a connection of its own (opened again when it died)."""
        start_event_loop()
        for host in self.hosts.hosts:
            events = self._events.setdefault(host.uri, Host(host.uri, host.name))
            registered = self._registered.get(host.uri)
            try:
                connection = events.connection()
            except BackendUnavailable as exc:
                log.warning("no libvirt lifecycle events from %s (%s); states are reconciled "
                            "periodically", host.name, exc.message)
                continue
            if connection is registered:
                continue

            def on_event(_conn: Any, domain: libvirt.virDomain, *_args: Any) -> None:
                if domain.name().startswith(PREFIX):
                    wake()

            connection.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                              on_event, None)
            self._registered[host.uri] = connection

    # ------------------------------------------------------------ orphans
    def orphans(self, known: list[Entity]) -> list[str]:
        """Our domains (their instance directory is in our instances directory)
        that no stored compute accounts for."""
        keys = {compute.key for compute in known}
        domains = self.hosts.domains()
        return sorted(name for domain in domains
                      if (name := domain.name()).startswith(PREFIX)
                      and name[len(PREFIX):] not in keys
                      and (self.instances / name[len(PREFIX):]).is_dir())

    def _orphan_entity(self, name: str, location: str | None = None) -> Entity:
        key = name.removeprefix(PREFIX)
        location = location or f"{COMPUTE.location}{key}"
        return Entity(id=location.rpartition("/")[2], key=key, kind=COMPUTE.type_id,
                      location=location)

    def discard_orphan(self, name: str) -> None:
        self.delete(self._orphan_entity(name))

    def adopt_orphan(self, name: str) -> Entity | None:
        try:
            domain = self.hosts.domain(name)
            if domain is None:
                return None
            xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
            _state, max_kib, _kib, vcpus, _cpu_time = domain.info()
        except (libvirt.libvirtError, BackendUnavailable):
            return None
        location = location_of(xml)
        if location is None or not location.startswith(COMPUTE.location):
            return None
        guest = self._orphan_entity(name, location)
        guest.tenant, guest.owner = ownership_of(xml)
        title = parse(xml).findtext("title") or ""
        guest.attributes = {"occi.core.id": guest.id, "occi.core.title": title,
                            "occi.compute.cores": vcpus,
                            "occi.compute.memory": round(max_kib / KIB_PER_GIB, 3),
                            **self._read_state(domain)}
        guest.attributes["occi.compute.state.message"] += " (adopted after a restart)"
        return guest

    def current_state(self, compute: Entity) -> Attributes | None:
        """The guest's state; `error` while the host it may be on does not
        answer (the guest is kept: its real state shows again once it does)."""
        try:
            domain = self._domain(compute)
            if domain is None:
                return {"occi.compute.state": "error",
                        "occi.compute.state.message": "the guest no longer exists in libvirt"}
            return self._read_state(domain)
        except BackendUnavailable as exc:
            silent = exc.message
        except libvirt.libvirtError as exc:
            if exc.get_error_domain() != libvirt.VIR_FROM_RPC:
                raise
            silent = f"libvirt stopped answering: {message(exc)}"
        return {"occi.compute.state": "error", "occi.compute.state.message":
                f"{silent}; the guest is kept and shows its real state again once its "
                "host answers"}

    def finish_create(self, compute: Entity) -> Attributes | None:
        """A guest defined but never started (its create stopped between the
        two) is started; one never defined is not made here (None: the create
        was interrupted, and says so)."""
        domain = self._domain(compute)
        if domain is None:
            return None
        if domain.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF and not domain.hasManagedSaveImage(0):
            try:
                domain.create()
            except libvirt.libvirtError as exc:
                return {"occi.compute.state": "error", "occi.compute.state.message":
                        f"libvirt could not start the guest: {message(exc)}"}
        return self.current_state(compute)

    def stats(self, compute: Entity) -> Attributes:
        domain = self._domain(compute)
        if domain is None or not domain.isActive():
            return {}
        try:
            # NOWAIT: what another job on the domain (an attach, a save) holds
            # is left out rather than waited for.
            [(_, record)] = domain.connect().domainListGetStats(
                [domain], libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
                | libvirt.VIR_DOMAIN_STATS_BLOCK | libvirt.VIR_DOMAIN_STATS_INTERFACE,
                libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT)
        except libvirt.libvirtError:
            return {}
        prefix = "occi_server.monitoring."
        count = lambda kind, field: sum(  # noqa: E731
            record.get(f"{kind}.{i}.{field}", 0) for i in range(record.get(f"{kind}.count", 0)))
        return {
            prefix + "cpu_seconds": round(record.get("cpu.time", 0) / 1e9, 3),
            prefix + "memory_kib": record.get("balloon.current", 0),
            prefix + "memory_rss_kib": record.get("balloon.rss", 0),
            prefix + "disk_read_bytes": count("block", "rd.bytes"),
            prefix + "disk_write_bytes": count("block", "wr.bytes"),
            prefix + "net_rx_bytes": count("net", "rx.bytes"),
            prefix + "net_tx_bytes": count("net", "tx.bytes"),
        }

    def console(self, compute: Entity, max_bytes: int = 256 * 1024) -> str:
        host = self.hosts.where(PREFIX + compute.key) if self._domain(compute) else None
        return self._files(host).log(compute.key, max_bytes).decode("utf-8", errors="replace")


def _bridges(interfaces: list[str]) -> set[str]:
    """The bridges the interfaces (their libvirt XML) are plugged into."""
    return {str(source.get("bridge")) for device in interfaces
            if (source := parse(device).find("source")) is not None and source.get("bridge")}

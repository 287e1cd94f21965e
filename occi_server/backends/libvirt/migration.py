"""Moving a guest to another host: a running guest live (its memory copied
while it runs, QEMU to QEMU over TCP, then switched over).

Between two hosts of this machine the guest's files stay where they are.
Otherwise the files go with it (storage.py): the destination gets an empty
boot disk, the guest's seed and its boot files, and QEMU copies the whole
disk while the memory moves (libvirt's copy-storage-all, over NBD); the
source's files go once it has moved. A stopped guest moves the same way,
started paused for the time of the move (its CPUs never run) and stopped
again at the destination."""

from __future__ import annotations

import socket
from pathlib import Path

import libvirt

from occi_server.backends.libvirt import secrets
from occi_server.backends.libvirt.domain import direct_boot, with_files, with_isolated_ports
from occi_server.backends.libvirt.hosts import Host, message
from occi_server.backends.libvirt.ssh import address_of
from occi_server.backends.libvirt.storage import GuestFiles
from occi_server.errors import BackendFailure, BackendUnavailable

MOVE = libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
# UNSAFE: disks both hosts reach (the files of one machine, volumes over
# iSCSI) are not on a file system libvirt knows to be shared; QEMU flushes
# them before the destination takes over.
LIVE = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_ABORT_ON_ERROR | libvirt.VIR_MIGRATE_UNSAFE
BOOT_DISK = "vda"


def move(domain: libvirt.virDomain, key: str, source: Host, destination: Host,
         files: tuple[GuestFiles, GuestFiles]) -> libvirt.virDomain:
    """`domain` (guest `key`, on `source`) defined, and running if it ran, on
    `destination`; gone from `source`. `files` are the two hosts' guest files.
    Returns it as the destination knows it. Its network ports are isolated on
    a host reached through tunnels, not on others (fabric.py)."""
    isolated = destination.ssh_target is not None
    name = domain.name()
    carried: list[str] = []
    try:
        persistent = with_isolated_ports(domain.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_MIGRATABLE), isolated)
        # Its volumes' CHAP secrets first: the destination's QEMU logs in with them.
        carried = secrets.of_domain(domain.XMLDesc(0)) + secrets.of_domain(persistent)
        secrets.carry(source.connection(), destination.connection(), carried)
        if files[0].local and files[1].local:
            moved = _move_definition(domain, source, destination, persistent, isolated)
        else:
            moved = _move_with_files(domain, key, source, destination, files, persistent,
                                     isolated)
    except (libvirt.libvirtError, BackendFailure) as exc:
        secrets.drop(destination.connection(), carried)
        reason = message(exc) if isinstance(exc, libvirt.libvirtError) else str(exc)
        raise BackendFailure(f"{name} did not move from {source.name} to "
                             f"{destination.name}: {reason}") from None
    secrets.drop(source.connection(), carried)
    return moved


def _move_definition(domain: libvirt.virDomain, source: Host, destination: Host,
                     persistent: str, isolated: bool) -> libvirt.virDomain:
    target = destination.connection()
    if not domain.isActive():
        return domain.migrate3(target, {libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persistent},
                               MOVE | libvirt.VIR_MIGRATE_OFFLINE)
    running = with_isolated_ports(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE), isolated)
    return domain.migrate3(target, {
        libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{_address(destination, source)}",
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: running,
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persistent}, MOVE | LIVE)


def _move_with_files(domain: libvirt.virDomain, key: str, source: Host, destination: Host,
                     files: tuple[GuestFiles, GuestFiles], persistent: str,
                     isolated: bool) -> libvirt.virDomain:
    here, there = files
    stopped = not domain.isActive()
    boot = {name: here.frontend_file(Path(path))
            for name, path in direct_boot(persistent).items() if name in ("kernel", "initrd")}
    if stopped:
        domain.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    moved = None
    try:
        with there.held():  # its boot files stay there until it is defined
            paths = there.receive(key, domain.blockInfo(BOOT_DISK)[0], here.carried(key),
                                  boot)
            placed: dict[str, Path | None] = {"kernel": paths.kernel, "initrd": paths.initrd}
            running = with_isolated_ports(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE),
                                          isolated)
            moved = domain.migrate3(destination.connection(), {
                libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{_address(destination, source)}",
                libvirt.VIR_MIGRATE_PARAM_DEST_XML: with_files(
                    running, paths.disk, paths.seed, paths.console, placed),
                libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: with_files(
                    persistent, paths.disk, paths.seed, paths.console, placed),
                libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: [BOOT_DISK],
            }, MOVE | LIVE | libvirt.VIR_MIGRATE_NON_SHARED_DISK
                | (libvirt.VIR_MIGRATE_PAUSED if stopped else 0))
    finally:
        if moved is None:
            if stopped and domain.isActive():
                domain.destroy()
            there.discard(key)
    if stopped:
        moved.destroy()
    here.discard(key)
    return moved


def _address(destination: Host, source: Host) -> str:
    """Where the source's QEMU reaches the destination's: the address of an
    added host, or, for a host of the configuration (this one), the address
    this host leaves from towards the source."""
    if destination.ssh_target is not None:
        return address_of(destination.ssh_target)
    if source.ssh_target is None:
        raise BackendFailure(f"no address of {destination.name} is known to move guests to "
                             "it from another host given by a libvirt URI")
    towards = address_of(source.ssh_target)
    family = socket.AF_INET6 if ":" in towards else socket.AF_INET
    # Connecting a UDP socket sends nothing: it only picks the route and its source.
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((towards, 9))
        except OSError as exc:
            raise BackendUnavailable(f"no route to {source.name}: {exc}") from None
        return str(probe.getsockname()[0])

"""Moving a guest to another host: a running guest live (its memory copied
while it runs, QEMU to QEMU over TCP, then switched over), a stopped one by
its definition. Disks stay where they are: the instances and images
directories are shared storage every host mounts at the same path."""

from __future__ import annotations

import socket

import libvirt

from occi_server.backends.libvirt.domain import with_isolated_ports
from occi_server.backends.libvirt.hosts import Host, message
from occi_server.backends.libvirt.ssh import address_of
from occi_server.errors import BackendFailure, BackendUnavailable

MOVE = libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
# UNSAFE: the site's contract is that the instances directory is shared by
# every host; libvirt recognises network file systems only, and refuses the
# move of a disk on any other (one file system shared otherwise, as in tests).
LIVE = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_ABORT_ON_ERROR | libvirt.VIR_MIGRATE_UNSAFE


def move(domain: libvirt.virDomain, source: Host, destination: Host) -> libvirt.virDomain:
    """`domain` (on `source`) defined, and running if it ran, on `destination`;
    gone from `source`. Returns it as the destination knows it. Its network
    ports are isolated on a host reached through tunnels, not on others
    (fabric.py)."""
    target = destination.connection()
    isolated = destination.ssh_target is not None
    try:
        persistent = with_isolated_ports(domain.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_MIGRATABLE), isolated)
        if not domain.isActive():
            return domain.migrate3(target, {libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persistent},
                                   MOVE | libvirt.VIR_MIGRATE_OFFLINE)
        address = _address(destination, source)
        running = with_isolated_ports(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE),
                                      isolated)
        return domain.migrate3(target, {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{address}",
                                        libvirt.VIR_MIGRATE_PARAM_DEST_XML: running,
                                        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persistent},
                               MOVE | LIVE)
    except libvirt.libvirtError as exc:
        raise BackendFailure(f"{domain.name()} did not move from {source.name} to "
                             f"{destination.name}: {message(exc)}") from None


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

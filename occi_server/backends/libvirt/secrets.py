"""The CHAP secrets libvirt keeps on a guest's host for the volumes it
reaches over iSCSI, one per volume (named by its usage, `occi-<iqn>`).

They are not private: a guest that moves takes its volumes' secrets along,
read back from the host it leaves (reading a value needs the same full
access to libvirt as defining one)."""

from __future__ import annotations

import libvirt

from occi_server.backends.libvirt.domain import (
    devices_matching,
    iscsi_secret_xml,
    parse,
    secret_usages,
)
from occi_server.backends.libvirt.hosts import message
from occi_server.errors import BackendFailure


def keep(connection: libvirt.virConnect, usage: str, value: bytes, description: str) -> None:
    try:
        secret = connection.secretDefineXML(iscsi_secret_xml(usage, description))
        secret.setValue(value)
    except libvirt.libvirtError as exc:
        raise BackendFailure(f"libvirt could not keep the CHAP secret: {message(exc)}") \
            from None


def drop(connection: libvirt.virConnect, usages: list[str]) -> None:
    for usage in set(usages):
        try:
            connection.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI,
                                           usage).undefine()
        except libvirt.libvirtError:
            continue  # gone already


def carry(source: libvirt.virConnect, destination: libvirt.virConnect,
          usages: list[str]) -> None:
    """The secrets `usages` of `source` defined on `destination` too."""
    for usage in set(usages):
        try:
            secret = source.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
            value = secret.value()
            description = parse(secret.XMLDesc(0)).findtext("description") or usage
        except libvirt.libvirtError as exc:
            raise BackendFailure(f"the CHAP secret {usage} cannot be read to move it: "
                                 f"{message(exc)}") from None
        keep(destination, usage, value, description)


def of_domain(xml: str) -> list[str]:
    """The secrets the disks of a domain (its XML) name."""
    return [usage for device in devices_matching(xml, "disk", lambda _: True)
            for usage in secret_usages(device)]

"""Resource templates (flavours) as provider mixins of resource_tpl."""

from __future__ import annotations

from dataclasses import dataclass

from occi_server.core import Attribute, AttrType, Mixin
from occi_server.kinds.infrastructure import COMPUTE, RESOURCE_TPL

# GFD.222 (Compute Resource Templates Profile) scheme for its standard flavours.
CRTP_SCHEME = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#"


@dataclass(frozen=True)
class Flavour:
    term: str
    cores: int
    memory: float  # GiB
    disk: float  # GiB of ephemeral storage
    title: str = ""
    scheme: str = CRTP_SCHEME


DEFAULT_FLAVOURS = (
    Flavour("small", 1, 1.0, 10.0, "Small: 1 core with 1 GiB memory and 10 GiB disk"),
    Flavour("medium", 2, 2.0, 20.0, "Medium: 2 cores with 2 GiB memory and 20 GiB disk"),
    Flavour("large", 4, 4.0, 40.0, "Large: 4 cores with 4 GiB memory and 40 GiB disk"),
    Flavour("mem_small", 1, 4.0, 10.0, "Memory small: 1 core with 4 GiB memory and 10 GiB disk"),
    Flavour("mem_medium", 2, 8.0, 20.0, "Memory medium: 2 cores with 8 GiB memory and 20 GiB disk"),
    Flavour("mem_large", 4, 16.0, 40.0, "Memory large: 4 cores with 16 GiB memory and 40 GiB disk"),
)


def flavour_mixins(flavours: tuple[Flavour, ...] | list[Flavour]) -> list[Mixin]:
    """One resource_tpl child mixin per flavour; its defaults are the flavour's sizes."""
    kind_attributes = {a.name: a for a in COMPUTE.attributes}
    mixins = []
    for flavour in flavours:
        mixins.append(Mixin(
            flavour.scheme, flavour.term, title=flavour.title or flavour.term,
            depends=(RESOURCE_TPL.type_id,), applies=(COMPUTE.type_id,),
            location=f"/mixin/resource_tpl/{flavour.term}/", origin="provider",
            attributes=(
                kind_attributes["occi.compute.cores"].with_default(flavour.cores),
                kind_attributes["occi.compute.memory"].with_default(float(flavour.memory)),
                Attribute("occi.compute.ephemeral_storage.size", AttrType.FLOAT, mutable=False,
                          default=float(flavour.disk),
                          description="Size of the ephemeral disk in GiB"),
            ),
        ))
    return mixins


MONITORING_COUNTERS = (
    ("cpu_seconds", AttrType.FLOAT, "CPU time used by the guest, in seconds"),
    ("memory_kib", AttrType.INTEGER, "Memory the guest has, in KiB"),
    ("memory_rss_kib", AttrType.INTEGER, "Host memory the guest occupies, in KiB"),
    ("disk_read_bytes", AttrType.INTEGER, "Bytes read from the guest's disks"),
    ("disk_write_bytes", AttrType.INTEGER, "Bytes written to the guest's disks"),
    ("net_rx_bytes", AttrType.INTEGER, "Bytes received by the guest's interfaces"),
    ("net_tx_bytes", AttrType.INTEGER, "Bytes sent by the guest's interfaces"),
)


def monitoring_mixin(site_scheme: str) -> Mixin:
    """Live usage counters of a running guest, read from the hypervisor at each GET."""
    return Mixin(
        site_scheme + "monitoring#", "compute", title="Live usage counters of a running guest",
        applies=(COMPUTE.type_id,), location="/mixin/monitoring/compute/", origin="provider",
        managed=True,
        attributes=tuple(Attribute(f"occi_server.monitoring.{name}", kind, mutable=False,
                                   description=text)
                         for name, kind, text in MONITORING_COUNTERS),
    )

"""Tenants' quotas as a read-only OCCI kind: GET /quota/ lists the quotas of
the caller's tenant (an operator's: every tenant's), GET /quota/<tenant> one."""

from __future__ import annotations

from occi_server.core import Attribute, AttrType, Kind
from occi_server.kinds.core import ENTITY

# Quota -> what it counts, in the unit operators write limits in.
QUOTAS = {
    "instances": "compute resources",
    "cores": "CPU cores of compute resources",
    "memory": "GiB of memory of compute resources",
    "volumes": "storage resources",
    "storage": "GiB of storage resources",
    "networks": "network resources",
    "public_ips": "network interfaces on public networks and IP reservations",
}

# What every tenant may use when the configuration says nothing else (the
# "default" entry of `quotas` overrides these, a tenant's own entry overrides
# both; a negative limit is unlimited): no tenant can fill the site by accident.
BUILTIN_LIMITS = {
    "instances": 20, "cores": 40, "memory": 80, "volumes": 40, "storage": 2000,
    "networks": 10, "public_ips": 10,
}

QUOTA = Kind(
    "http://schemas.occi-server.org/occi/infrastructure#", "quota",
    title="Quotas of a tenant: limits and current usage (read-only and set by operators)",
    parent=ENTITY.type_id, location="/quota/",
    attributes=(
        Attribute("occi_server.quota.tenant", mutable=False, description="The tenant"),
        *(attribute for name, what in QUOTAS.items() for attribute in (
            Attribute(f"occi_server.quota.{name}.limit", AttrType.FLOAT, mutable=False,
                      description=f"Most {what} the tenant may have (absent: no limit)"),
            Attribute(f"occi_server.quota.{name}.usage", AttrType.FLOAT, mutable=False,
                      description=f"{what[0].upper()}{what[1:]} the tenant has now"),
        )),
    ),
)

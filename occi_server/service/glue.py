"""The GLUE 2.1 description of this endpoint, in the JSON shape EGI's
cloud-info-provider publishes: the service, its manager and endpoint, a share
per tenant (with its quotas and VM counts), instance types from resource_tpl
and images from os_tpl."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from occi_server import SERVER_HEADER, __version__
from occi_server.core import Mixin, Model
from occi_server.kinds.infrastructure import OS_TPL, RESOURCE_TPL

VALIDITY_SECONDS = 3600
AUTHENTICATION = {"basic": "basic", "oidc": "oidc", "x509": "X509-VOMS"}


@dataclass(frozen=True)
class Share:
    tenant: str
    vo: str  # the VO (or group) whose members act for the tenant
    limits: dict[str, float]
    vms: dict[str, int]  # total, running, suspended, halted


def occi_version() -> str:
    """The newest OCCI version our Server header announces."""
    versions = re.findall(r"OCCI/(\d+\.\d+)", SERVER_HEADER)
    return max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def glue_document(model: Model, *, site: str, endpoint: str, methods: tuple[str, ...],
                  shares: list[Share], backend: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    service_id = f"{endpoint}_cloud.compute"
    manager_id = f"{service_id}_manager"
    endpoint_id = f"{endpoint}_OCCI_{occi_version()}"

    def entity(entity_id: str, **fields: Any) -> dict[str, Any]:
        return {"ID": entity_id, "Validity": VALIDITY_SECONDS, "CreationTime": now, **fields}

    share_ids = {share.tenant: f"{endpoint_id}_share_{share.tenant}" for share in shares}
    shared = {"Share": list(share_ids.values()), "CloudComputingEndpoint": [endpoint_id],
              "CloudComputingManager": [manager_id]}
    flavours = [m for m in model.mixins() if RESOURCE_TPL.type_id in m.depends]
    images = [m for m in model.mixins() if OS_TPL.type_id in m.depends]
    largest_cpu = max((int(_default(f, "occi.compute.cores") or 0) for f in flavours),
                      default=0)
    largest_ram = max((int(float(_default(f, "occi.compute.memory") or 0) * 1024)
                       for f in flavours), default=0)
    totals = {key: sum(share.vms.get(key, 0) for share in shares)
              for key in ("total", "running", "suspended", "halted")}
    return {
        "CloudComputingService": [entity(
            service_id, Name=f"Cloud Compute service at {site}",
            OtherInfo={"site_name": site}, Associations={"AdminDomain": [site]},
            Type="org.cloud.iaas", QualityLevel="production",
            Complexity=f"endpointType=1,share={len(shares)}",
            Capability=["executionmanagement.dynamicvmdeploy", "security.accounting"],
            TotalVM=totals["total"], RunningVM=totals["running"],
            SuspendedVM=totals["suspended"], HaltedVM=totals["halted"])],
        "CloudComputingManager": [entity(
            manager_id, Name=f"{backend} manager", ProductName=backend,
            Associations={"CloudComputingService": [service_id]},
            InstanceMaxCPU=largest_cpu, InstanceMinCPU=0, InstanceMaxRAM=largest_ram,
            InstanceMinRAM=0)],
        "CloudComputingEndpoint": [entity(
            endpoint_id, Name=f"OCCI endpoint {endpoint}",
            Associations={"CloudComputingService": [service_id]},
            Capability=["executionmanagement.dynamicvmdeploy"], QualityLevel="production",
            InterfaceName="org.ogf.occi", InterfaceVersion=occi_version(),
            HealthState="ok", HealthStateInfo="endpoint answering", ServingState="production",
            Technology="webservice", Implementor="occi-server",
            ImplementationName="occi-server", ImplementationVersion=__version__,
            Semantics="https://www.ogf.org/documents/GFD.221.pdf",
            Authentication=",".join(AUTHENTICATION[m] for m in methods) or "none",
            URL=endpoint)],
        "CloudComputingImage": [entity(
            image.type_id, Name=image.title or image.term, Associations=shared,
            MarketplaceURL=str(_default(image, "occi_server.marketplace.identifier") or ""),
            OSPlatform=str(image.info.get("architecture") or ""),
            OSName=str(image.info.get("os") or ""), Description=image.title or image.term,
            AccessInfo="rsa") for image in images],
        "CloudComputingInstanceType": [entity(
            flavour.type_id, Name=flavour.term, Associations=shared, Platform="amd64",
            CPU=int(_default(flavour, "occi.compute.cores") or 0),
            RAM=int(float(_default(flavour, "occi.compute.memory") or 0) * 1024),
            Disk=int(float(_default(flavour, "occi.compute.ephemeral_storage.size") or 0)),
            NetworkIn="UNKNOWN", NetworkOut=True) for flavour in flavours],
        "Share": [entity(
            share_ids[share.tenant], Name=f"{share.tenant} share",
            OtherInfo={"project_name": share.tenant, "quotas": share.limits},
            Associations={"CloudComputingService": [service_id],
                          "CloudComputingEndpoint": [endpoint_id]},
            InstanceMaxCPU=largest_cpu, InstanceMaxRAM=largest_ram,
            TotalVM=share.vms.get("total", 0), RunningVM=share.vms.get("running", 0),
            SuspendedVM=share.vms.get("suspended", 0), HaltedVM=share.vms.get("halted", 0),
            MaxVM=int(share.limits["instances"]) if "instances" in share.limits else None,
            ProjectID=share.tenant) for share in shares],
        "MappingPolicy": [entity(
            f"{share_ids[share.tenant]}_Policy",
            Associations={"Share": [share_ids[share.tenant]], "PolicyUserDomain": [share.vo]},
            Rule=[f"VO:{share.vo}"], Scheme="org.glite.standard") for share in shares],
        "AccessPolicy": [entity(
            f"{endpoint_id}_policy", Associations={"CloudComputingEndpoint": [endpoint_id]},
            Rule=[f"VO:{share.vo}" for share in shares], Scheme="org.glite.standard")],
    }


def _default(mixin: Mixin, name: str) -> Any:
    return next((a.default for a in mixin.attributes if a.name == name), None)

"""The CIMI resources (DSP0263 2.0) this site offers, as views of the OCCI
entities and categories: one VM is one entity whichever protocol made it.

Every id and href is relative to the entry point's `baseURI` (`machine/<id>`,
`machine/<id>/volume/<link id>`); `<id>` is the last segment of the entity's
OCCI location, so `/compute/abc` is `machine/abc`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from occi_server.core import Entity, Kind, Mixin, Model
from occi_server.kinds.infrastructure import (
    COMPUTE,
    COMPUTE_ACTION,
    GIB,
    IPRESERVATION,
    NETWORK,
    NETWORK_ACTION,
    NETWORKINTERFACE,
    OS_TPL,
    PUBLIC_NETWORK,
    RESOURCE_TPL,
    STORAGE,
    STORAGELINK,
)

SCHEMA = "http://schemas.dmtf.org/cimi/2/"
ACTION = SCHEMA + "action/"
KIB = 1024
Resource = dict[str, Any]


@dataclass(frozen=True)
class CimiType:
    """A CIMI resource type: its name, its collection in the entry point, the
    first segment of its members' ids, and the OCCI kind behind it (None:
    made from categories or jobs, not entities)."""

    name: str
    collection: str
    segment: str
    kind: Kind | None = None
    creatable: bool = False
    kept: bool = False  # a template the tenant keeps (a document in the store)
    members_name: str = ""  # its collection's array of members, if not named as the collection

    @property
    def members(self) -> str:
        return self.members_name or self.collection

    @property
    def uri(self) -> str:
        return SCHEMA + self.name

    @property
    def collection_uri(self) -> str:
        return SCHEMA + self.name + "Collection"


MACHINE = CimiType("Machine", "machines", "machine", COMPUTE, creatable=True)
VOLUME = CimiType("Volume", "volumes", "volume", STORAGE, creatable=True)
NETWORK_TYPE = CimiType("Network", "networks", "network", NETWORK, creatable=True)
ADDRESS = CimiType("Address", "addresses", "address", IPRESERVATION, creatable=True)
MACHINE_CONFIGURATION = CimiType("MachineConfiguration", "machineConfigs", "machineConfig")
MACHINE_IMAGE = CimiType("MachineImage", "machineImages", "machineImage", creatable=True)
JOB = CimiType("Job", "jobs", "job")
CREDENTIAL = CimiType("Credential", "credentials", "credential", creatable=True, kept=True)
MACHINE_TEMPLATE = CimiType("MachineTemplate", "machineTemplates", "machineTemplate",
                            creatable=True, kept=True)
VOLUME_TEMPLATE = CimiType("VolumeTemplate", "volumeTemplates", "volumeTemplate",
                           creatable=True, kept=True)
VOLUME_CONFIGURATION = CimiType("VolumeConfiguration", "volumeConfigs", "volumeConfig",
                                creatable=True, kept=True)
NETWORK_CONFIGURATION = CimiType("NetworkConfiguration", "networkConfigs", "networkConfig",
                                 creatable=True, kept=True)
MACHINE_VOLUME = CimiType("MachineVolume", "volumes", "volume", STORAGELINK, creatable=True,
                          members_name="machineVolumes")
MACHINE_INTERFACE = CimiType("MachineNetworkInterface", "networkInterfaces",
                             "networkInterface", NETWORKINTERFACE, creatable=True)
RESOURCE_METADATA = CimiType("ResourceMetadata", "resourceMetadata", "resourceMetadata",
                             members_name="resourceMetadatas")
# The entry point's collections, in the order it lists them.
TOP_LEVEL = (MACHINE, MACHINE_TEMPLATE, MACHINE_CONFIGURATION, MACHINE_IMAGE, CREDENTIAL,
             VOLUME, VOLUME_TEMPLATE, VOLUME_CONFIGURATION, NETWORK_TYPE,
             NETWORK_CONFIGURATION, ADDRESS, JOB, RESOURCE_METADATA)
BY_COLLECTION = {t.collection: t for t in TOP_LEVEL}
BY_SEGMENT = {t.segment: t for t in TOP_LEVEL}
# The sub-collections of a machine: its volumes and its interfaces.
MACHINE_PARTS = {t.collection: t for t in (MACHINE_VOLUME, MACHINE_INTERFACE)}
MACHINE_PART_SEGMENTS = {t.segment: t for t in (MACHINE_VOLUME, MACHINE_INTERFACE)}

# CIMI operations on a machine <- the OCCI actions that do them.
MACHINE_ACTIONS = {"start": "start", "stop": "stop", "restart": "restart",
                   "suspend": "suspend", "capture": "save"}
NETWORK_ACTIONS = {"start": "up", "stop": "down"}
ACTIONS_OF = {COMPUTE.type_id: (COMPUTE_ACTION, MACHINE_ACTIONS),
              NETWORK.type_id: (NETWORK_ACTION, NETWORK_ACTIONS)}

_MACHINE_STATES = {"active": "STARTED", "inactive": "STOPPED", "suspended": "SUSPENDED",
                   "error": "ERROR"}
_NETWORK_STATES = {"active": "STARTED", "inactive": "STOPPED", "error": "ERROR"}
_VOLUME_STATES = {"online": "AVAILABLE", "offline": "AVAILABLE", "error": "ERROR"}
_ATTACHMENT_STATES = {"active": "ATTACHED", "inactive": "ATTACHED", "error": "ERROR"}
_ADDRESS_STATES = {"active": "AVAILABLE", "inactive": "AVAILABLE", "error": "ERROR"}
# A job at work on an entity shows as this state (by the job's first word).
_BUSY = {"deleting": "DELETING", "creating": "CREATING"}
_BUSY_ATTACHMENT = {"deleting": "DETACHING", "creating": "ATTACHING"}
_JOB_STATES = {"running": "RUNNING", "done": "SUCCESS", "failed": "FAILED"}
# A job's operation (its first word) as the CIMI operation it carries out.
_JOB_ACTIONS = {"creating": "add", "attaching": "add", "deleting": "delete",
                "changing": "edit", "saving": ACTION + "capture",
                **{occi: ACTION + cimi for _, terms in ACTIONS_OF.values()
                   for cimi, occi in terms.items() if occi != "save"}}


def compact(value: Any) -> Any:
    """A resource as DSP0263 serializes it: empty strings, maps, arrays and
    collections are left out (5.5.15), at every depth."""
    if isinstance(value, dict):
        return {name: compact(item) for name, item in value.items()
                if item not in ("", [], {}) and item is not None}
    if isinstance(value, list):
        return [compact(item) for item in value]
    return value


def kib(gib: float | int | str) -> int:
    """OCCI's GiB as CIMI's KiB (memory, capacity)."""
    return round(float(gib) * GIB / KIB)


def member_id(entity_or_location: Entity | str) -> str:
    """The last segment of an OCCI location: the member's id in CIMI."""
    location = entity_or_location if isinstance(entity_or_location, str) \
        else entity_or_location.location
    return location.rstrip("/").rpartition("/")[2]


def href_of(cimi_type: CimiType, entity_or_location: Entity | str) -> str:
    return f"{cimi_type.segment}/{member_id(entity_or_location)}"


def _state(entity: Entity, states: dict[str, str], busy: dict[str, str],
           operation: str | None) -> str:
    attribute = f"occi.{entity.kind.rpartition('#')[2]}.state"
    state = entity.attributes.get(attribute, "")
    if state == "waiting":
        return busy.get(operation or "", busy["creating"])
    return states.get(state, "ERROR")


def _common(cimi_type: CimiType, entity: Entity) -> Resource:
    resource: Resource = {"resourceURI": cimi_type.uri, "id": href_of(cimi_type, entity)}
    for name, attribute in (("name", "occi.core.title"), ("description", "occi.core.summary")):
        if entity.attributes.get(attribute):
            resource[name] = entity.attributes[attribute]
    resource["created"] = _timestamp(entity.created)
    resource["updated"] = _timestamp(entity.updated)
    return resource


def _operations(cimi_type: CimiType, entity: Entity, changeable: bool) -> list[Resource]:
    """What can be done to the entity now: edit, delete and its legal actions."""
    if not changeable:
        return []
    href = href_of(cimi_type, entity)
    operations = [{"rel": "edit", "href": href}, {"rel": "delete", "href": href}]
    scheme_and_terms = ACTIONS_OF.get(entity.kind)
    if scheme_and_terms is not None:
        scheme, terms = scheme_and_terms
        legal = set(entity.actions)
        for cimi, occi in terms.items():
            if scheme + occi in legal:
                # A capture adds a MachineImage whose imageLocation is the machine.
                target = MACHINE_IMAGE.collection if cimi == "capture" \
                    else f"{href}/action/{cimi}"
                operations.append({"rel": ACTION + cimi, "href": target})
    return operations


def machine(entity: Entity, changeable: bool, operation: str | None = None) -> Resource:
    attributes = entity.attributes
    resource = _common(MACHINE, entity)
    resource["state"] = _state(entity, _MACHINE_STATES, _BUSY, operation)
    if attributes.get("occi.compute.cores") is not None:
        resource["cpu"] = int(attributes["occi.compute.cores"])
    if attributes.get("occi.compute.memory") is not None:
        resource["memory"] = kib(attributes["occi.compute.memory"])
    href = href_of(MACHINE, entity)
    resource["volumes"] = {"href": f"{href}/volumes"}
    resource["networkInterfaces"] = {"href": f"{href}/networkInterfaces"}
    resource["operations"] = _operations(MACHINE, entity, changeable)
    return resource


def volume(entity: Entity, changeable: bool, operation: str | None = None) -> Resource:
    resource = _common(VOLUME, entity)
    resource["state"] = _state(entity, _VOLUME_STATES, _BUSY, operation)
    size = entity.attributes.get("occi.storage.size")
    if size is not None:
        resource["capacity"] = kib(size)
    resource["bootable"] = False
    resource["operations"] = _operations(VOLUME, entity, changeable)
    return resource


def network(entity: Entity, changeable: bool, operation: str | None = None) -> Resource:
    resource = _common(NETWORK_TYPE, entity)
    resource["state"] = _state(entity, _NETWORK_STATES, _BUSY, operation)
    resource["networkType"] = "PUBLIC" if PUBLIC_NETWORK.type_id in entity.mixins \
        else "PRIVATE"
    resource["operations"] = _operations(NETWORK_TYPE, entity, changeable)
    return resource


def address(entity: Entity, changeable: bool, operation: str | None = None) -> Resource:
    resource = _common(ADDRESS, entity)
    resource["state"] = _state(entity, _ADDRESS_STATES, _BUSY, operation)
    if entity.attributes.get("occi.ipreservation.address"):
        resource["ip"] = entity.attributes["occi.ipreservation.address"]
    resource["allocation"] = "dynamic"
    resource["protocol"] = "IPv4"
    resource["operations"] = _operations(ADDRESS, entity, changeable)
    return resource


def machine_part(machine_entity: Entity, link: Entity, changeable: bool,
                 operation: str | None = None) -> Resource:
    """A link from a machine: a MachineVolume (storagelink) or a
    MachineNetworkInterface (networkinterface)."""
    part = MACHINE_VOLUME if link.kind == STORAGELINK.type_id else MACHINE_INTERFACE
    href = f"{href_of(MACHINE, machine_entity)}/{part.segment}/{member_id(link)}"
    resource: Resource = {"resourceURI": part.uri, "id": href,
                          "created": _timestamp(link.created),
                          "updated": _timestamp(link.updated),
                          "state": _state(link, _ATTACHMENT_STATES, _BUSY_ATTACHMENT,
                                          operation)}
    if part is MACHINE_VOLUME:
        resource["volume"] = {"href": href_of(VOLUME, link.target or "")}
        if link.attributes.get("occi.storagelink.deviceid"):
            resource["initialLocation"] = link.attributes["occi.storagelink.deviceid"]
    else:
        target_type = ADDRESS if link.target_kind == IPRESERVATION.type_id else NETWORK_TYPE
        resource[target_type.segment] = {"href": href_of(target_type, link.target or "")}
        if link.attributes.get("occi.networkinterface.mac"):
            resource["mac"] = link.attributes["occi.networkinterface.mac"]
        if link.attributes.get("occi.networkinterface.address"):
            resource["addresses"] = [{"ip": link.attributes["occi.networkinterface.address"]}]
    resource["operations"] = [{"rel": "delete", "href": href}] if changeable else []
    return resource


def machine_configurations(model: Model) -> list[Resource]:
    """The site's flavours (resource_tpl mixins)."""
    return [_configuration(mixin) for mixin in _templates(model, RESOURCE_TPL.type_id)]


def _configuration(mixin: Mixin) -> Resource:
    defaults = {attribute.name: attribute.default for attribute in mixin.attributes}
    resource: Resource = {"resourceURI": MACHINE_CONFIGURATION.uri,
                          "id": f"{MACHINE_CONFIGURATION.segment}/{mixin.term}",
                          "name": mixin.term, "description": mixin.title or mixin.term}
    if defaults.get("occi.compute.cores") is not None:
        resource["cpu"] = int(defaults["occi.compute.cores"])
    if defaults.get("occi.compute.memory") is not None:
        resource["memory"] = kib(defaults["occi.compute.memory"])
    disk = defaults.get("occi.compute.ephemeral_storage.size")
    if disk:
        resource["disks"] = [{"capacity": kib(disk)}]
    resource["cpuArch"] = "x86_64"
    resource["operations"] = []
    return resource


def machine_images(model: Model, absolute: Callable[[str], str]) -> list[Resource]:
    """The images computes boot (os_tpl mixins)."""
    return [machine_image(mixin.term, mixin.title, absolute(mixin.location or ""))
            for mixin in _templates(model, OS_TPL.type_id)]


def machine_image(term: str, title: str, location: str, state: str = "AVAILABLE"
                  ) -> Resource:
    return {"resourceURI": MACHINE_IMAGE.uri, "id": f"{MACHINE_IMAGE.segment}/{term}",
            "name": term, "description": title or term, "state": state, "type": "IMAGE",
            "imageLocation": location, "operations": []}


def _templates(model: Model, parent: str) -> list[Mixin]:
    return sorted((mixin for mixin in model.mixins()
                   if mixin.type_id != parent and model.is_mixin_of(mixin.type_id, parent)),
                  key=lambda mixin: mixin.term)


def template_mixin(model: Model, parent: str, term: str) -> Mixin | None:
    """The resource_tpl or os_tpl mixin a configuration or image href names."""
    return next((mixin for mixin in _templates(model, parent) if mixin.term == term), None)


def job(record: dict[str, Any], cimi_type_of: Callable[[str], CimiType | None]) -> Resource:
    """A service job as a CIMI Job."""
    action = _JOB_ACTIONS.get(record["operation"], record["operation"])
    target = cimi_type_of(record["location"])
    resource: Resource = {
        "resourceURI": JOB.uri, "id": f"{JOB.segment}/{record['id']}",
        "created": _timestamp(record.get("created")),
        "updated": _timestamp(record.get("updated")),
        "state": _JOB_STATES.get(record["state"], "FAILED"),
        "action": action,
        "progress": 0 if record["state"] == "running" else 100,
        "returnCode": 0 if record["state"] != "failed" else 1,
        "statusMessage": record.get("error") or record.get("progress") or "",
        "timeOfStatusChange": _timestamp(record.get("updated")),
        "operations": [],
    }
    if target is not None:
        resource["targetResource"] = {"href": href_of(target, record["location"])}
    return {name: value for name, value in resource.items() if value is not None}


def _timestamp(value: datetime | None) -> str | None:
    """An instant in ISO 8601 with its zone (the store keeps UTC; SQLite drops the zone)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def kept(cimi_type: CimiType, row: dict[str, Any]) -> Resource:
    """A template the tenant keeps, as CIMI shows it."""
    resource: Resource = {"resourceURI": cimi_type.uri, "id": f"{cimi_type.segment}/{row['id']}"}
    for name in ("name", "description"):
        if row.get(name):
            resource[name] = row[name]
    resource["created"] = _timestamp(row["created"])
    resource["updated"] = _timestamp(row["updated"])
    resource.update(row["document"])
    resource["operations"] = [{"rel": "edit", "href": resource["id"]},
                              {"rel": "delete", "href": resource["id"]}]
    return resource


# What DSP0263 makes optional that this site does not offer (said in the
# CloudEntryPoint's metadata).
LEFT_OUT = (
    "Systems, SystemTemplates and their parts",
    "VolumeImages (volume snapshots): a volume is cloned from a MachineImage instead",
    "NetworkTemplates, NetworkPorts, ForwardingGroups, AddressTemplates",
    "Meters, EventLogs and Events",
    "properties on resources (a create or edit that sends some is refused)",
    "the pause action (suspend keeps the guest in memory)",
    "$expand beyond a Machine's volumes and networkInterfaces; aggregations",
    "volumeTemplates in a MachineTemplate, and initial states other than STARTED",
)
_DESCRIPTIONS = {
    "start": "Start the machine, or bring the network up",
    "stop": "Stop it (force: power off at once)", "restart": "Restart (force: reset)",
    "suspend": "Suspend the machine in memory",
    "capture": "Save the machine's disk as a new MachineImage",
}
CAPABILITY = SCHEMA + "capability/"
# DSP0263 5.11.1's capabilities, as this site has them (an absent boolean one is false).
CAPABILITIES: dict[str, dict[str, Any]] = {
    "CloudEntryPoint": {
        "ExpandParameterQuery": True, "FilterParameterQuery": True,
        "FirstParameterAndLastParameterQuery": True, "SelectParameterQuery": True,
        "FormatParameterQuery": True, "OrderByParameterQuery": True,
        "QueryPathNotation": False, "ValueScopes": False},
    "Machine": {
        "DefaultInitialState": "STARTED", "InitialStates": ["STARTED"],
        "MachineConfigByValue": True, "MachineCredentialByValue": True,
        "MachineImageByValue": False, "MachineVolumeTemplatesByValue": False,
        "MachineTemplateByValue": True, "MachineStopForce": True,
        "MachineStopForceDefault": False, "RestoreFromImage": False,
        "UserData": "cloud-init NoCloud seed"},
    "Credential": {"CredentialTemplateByValue": True},
    "Volume": {"SharedVolumeSupport": False, "VolumeConfigByValue": True,
               "VolumeImageByValue": False, "VolumeSnapshot": False,
               "VolumeTemplateByValue": True},
    "Network": {"NetworkTemplateByValue": True, "DefaultInitialState": "STARTED",
                "InitialStates": ["STARTED"]},
}


def metadata() -> list[Resource]:
    """ResourceMetadata: each offered type with its capabilities and
    operations, and the entry point's, which says what the site leaves out."""
    found = []
    for name, uri in (("CloudEntryPoint", SCHEMA + "CloudEntryPoint"),
                      *((t.name, t.uri) for t in TOP_LEVEL if t is not RESOURCE_METADATA)):
        cimi_type = next((t for t in TOP_LEVEL if t.name == name), None)
        actions = ACTIONS_OF.get(cimi_type.kind.type_id, ("", {}))[1] \
            if cimi_type is not None and cimi_type.kind is not None else {}
        resource: Resource = {
            "resourceURI": RESOURCE_METADATA.uri,
            "id": f"{RESOURCE_METADATA.segment}/{name}", "name": name, "typeURI": uri,
            "description": "Not offered: " + "; ".join(LEFT_OUT)
            if name == "CloudEntryPoint" else "",
            "capabilities": [{"name": capability, "uri": f"{CAPABILITY}{name}/{capability}",
                              "value": value}
                             for capability, value in CAPABILITIES.get(name, {}).items()],
            "actions": [{"name": action, "uri": ACTION + action, "method": "POST",
                         "description": _DESCRIPTIONS[action]} for action in actions],
        }
        found.append(resource)
    return found

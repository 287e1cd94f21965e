"""What a CIMI request body asks for, as the OCCI specs the service validates:
MachineCreate, VolumeCreate, NetworkCreate, AddressCreate, a MachineVolume or
MachineNetworkInterface to add, an edit, an Action; and the documents of the
templates a tenant keeps (credentials, machine and volume templates, volume
and network configurations), checked as a create would check them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from occi_server.cimi.resources import (
    ACTION,
    ACTIONS_OF,
    ADDRESS,
    CREDENTIAL,
    KIB,
    MACHINE,
    MACHINE_CONFIGURATION,
    MACHINE_IMAGE,
    MACHINE_TEMPLATE,
    NETWORK_CONFIGURATION,
    NETWORK_TYPE,
    SCHEMA,
    VOLUME,
    VOLUME_CONFIGURATION,
    VOLUME_TEMPLATE,
    CimiType,
    template_mixin,
)
from occi_server.core import Model
from occi_server.core.specs import ActionSpec, EntitySpec, LinkSpec
from occi_server.errors import BadRequest
from occi_server.kinds.infrastructure import (
    COMPUTE,
    COMPUTE_ACTION,
    GIB,
    IMAGE_TPL,
    IPNETWORK,
    IPRESERVATION,
    NETWORK,
    NETWORKINTERFACE,
    OS_TPL,
    PUBLIC_NETWORK,
    RESOURCE_TPL,
    SSH_KEY,
    STORAGE,
    STORAGELINK,
    USER_DATA,
)

Body = dict[str, Any]
# Turns an href (absolute, or relative to baseURI) into (segment, rest).
Resolve = Callable[[str], tuple[str, str]]
# An OpenSSH public key: its type and Base64 body (a comment may follow).
SSH_PUBLIC_KEY = re.compile(r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) "
                            r"[A-Za-z0-9+/]+={0,3}( [^\n]*)?\n?")


@dataclass
class Refs:
    """What a body's references are resolved against: the model in force
    (configurations and images) and the templates the tenant keeps."""

    model: Model
    resolve: Resolve
    stored: Callable[[CimiType, str], Body | None]  # a kept template's document

    def member(self, value: Body, what: CimiType, name: str) -> str:
        """The member id an `{"href": …}` names, checked to be one of `what`."""
        href = value.get("href")
        if not isinstance(href, str):
            raise BadRequest(f"{name} must be a reference: {{\"href\": \"{what.segment}/…\"}}")
        segment, rest = self.resolve(href)
        if segment != what.segment or not rest or "/" in rest:
            raise BadRequest(f"{name} {href!r} is not a {what.name}")
        return rest

    def template(self, value: Body, what: CimiType, name: str) -> Body:
        """A template sent by value, or the kept one its href names (with what
        is sent beside the href in place of the kept values)."""
        if "href" not in value:
            return value
        member = self.member(value, what, name)
        kept = self.stored(what, member)
        if kept is None:
            raise BadRequest(f"{name}: no {what.name} {what.segment}/{member}")
        return {**kept, **{k: v for k, v in value.items() if k != "href"}}


def _object(body: Body, name: str, required: bool = False) -> Body | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is missing")
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be an object")
    return value


def _text(body: Body, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def _count(body: Body, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{name} must be a positive integer")
    return value


def _expect(body: Body, resource: str) -> None:
    uri = body.get("resourceURI")
    if uri is not None and uri != SCHEMA + resource:
        raise BadRequest(f"resourceURI {uri!r} is not {SCHEMA + resource}")


def _no_properties(body: Body) -> None:
    if body.get("properties"):
        raise BadRequest("this site does not keep properties on resources; send none")


def _named(body: Body) -> dict[str, Any]:
    """name and description, as OCCI's title and summary."""
    attributes = {}
    for name, attribute in (("name", "occi.core.title"), ("description", "occi.core.summary")):
        value = _text(body, name)
        if value is not None:
            attributes[attribute] = value
    return attributes


def _location(kind_location: str | None, member: str) -> str:
    return f"{kind_location}{member}"


def _from_template(body: Body, refs: Refs, template_type: CimiType,
                   describe: Callable[[Body, Refs], EntitySpec]) -> EntitySpec:
    """A MachineCreate or VolumeCreate: what its template (kept, or by value)
    describes, named as the body says."""
    _expect(body, template_type.name.removesuffix("Template") + "Create")
    _no_properties(body)
    template = _object(body, template_type.segment, required=True)
    assert template is not None
    spec = describe(refs.template(template, template_type, template_type.segment), refs)
    spec.attributes.update(_named(body))
    return spec


def machine_create(body: Body, refs: Refs) -> EntitySpec:
    return _from_template(body, refs, MACHINE_TEMPLATE, machine_spec)


def machine_spec(template: Body, refs: Refs) -> EntitySpec:
    """The compute a machine template (by value) describes."""
    _no_properties(template)
    spec = EntitySpec(kind=COMPUTE.type_id)
    config = _object(template, "machineConfig", required=True)
    assert config is not None
    if "href" in config:
        term = refs.member(config, MACHINE_CONFIGURATION, "machineConfig")
        mixin = template_mixin(refs.model, RESOURCE_TPL.type_id, term)
        if mixin is None:
            raise BadRequest(f"no machine configuration {term}")
        spec.mixins.append(mixin.type_id)
    else:
        cpu, memory = _count(config, "cpu"), _count(config, "memory")
        if cpu is None or memory is None:
            raise BadRequest("machineConfig by value needs cpu and memory (KiB)")
        spec.attributes["occi.compute.cores"] = cpu
        spec.attributes["occi.compute.memory"] = memory * KIB / GIB
    image = _object(template, "machineImage", required=True)
    assert image is not None
    term = refs.member(image, MACHINE_IMAGE, "machineImage")
    os_tpl = template_mixin(refs.model, OS_TPL.type_id, term)
    if os_tpl is None:
        raise BadRequest(f"no machine image {term}")
    spec.mixins.append(os_tpl.type_id)
    credential = _object(template, "credential")
    if credential is not None:
        key = public_key(refs.template(credential, CREDENTIAL, "credential"))
        spec.mixins.append(SSH_KEY.type_id)
        spec.attributes["occi.credentials.ssh.publickey"] = key
    user_data = _text(template, "userData")
    if user_data:
        spec.mixins.append(USER_DATA.type_id)
        spec.attributes["occi.compute.userdata"] = user_data
    state = _text(template, "initialState")
    if state not in (None, "STARTED"):
        raise BadRequest(f"initialState {state!r}: a machine here is STARTED as it is made; "
                         "stop it after")
    if template.get("volumeTemplates"):
        raise BadRequest("volumeTemplates are not offered: create the volume, then attach it "
                         "(volumes)")
    # networkInterfaces as CIMI 1.x wrote them, interfaceTemplates as 2.0 does
    for interface in [*_list(template, "networkInterfaces"),
                      *_list(template, "interfaceTemplates")]:
        spec.links.append(interface_link(interface, refs))
    for attachment in _list(template, "volumes"):
        spec.links.append(volume_link(attachment, refs))
    return spec


def public_key(credential: Body) -> str:
    """The OpenSSH public key a credential (by value) carries."""
    key = _text(credential, "publicKey") or _text(credential, "key")
    if not key or len(key) > 16384 or not SSH_PUBLIC_KEY.fullmatch(key):
        raise BadRequest("a credential carries publicKey, an OpenSSH public key such as "
                         "\"ssh-ed25519 AAAA… user@host\"")
    return key


def _list(body: Body, name: str) -> list[Body]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f"{name} must be a list of objects")
    return value


def interface_link(body: Body, refs: Refs) -> LinkSpec:
    """A MachineNetworkInterface: to a network, or to an address (a reserved
    public address led to the machine)."""
    _no_properties(body)
    if body.get("address") is not None:
        address = _object(body, "address")
        assert address is not None
        member = refs.member(address, ADDRESS, "address")
        return LinkSpec(kind=NETWORKINTERFACE.type_id, target_kind=IPRESERVATION.type_id,
                        target=_location(IPRESERVATION.location, member))
    target = _object(body, "network", required=True)
    assert target is not None
    member = refs.member(target, NETWORK_TYPE, "network")
    return LinkSpec(kind=NETWORKINTERFACE.type_id, target_kind=NETWORK.type_id,
                    target=_location(NETWORK.location, member))


def volume_link(body: Body, refs: Refs) -> LinkSpec:
    """A MachineVolume: a volume attached at initialLocation (a device path)."""
    _no_properties(body)
    target = _object(body, "volume", required=True)
    assert target is not None
    if "href" not in target:
        raise BadRequest("volume must be a reference: create the volume first")
    member = refs.member(target, VOLUME, "volume")
    link = LinkSpec(kind=STORAGELINK.type_id, target_kind=STORAGE.type_id,
                    target=_location(STORAGE.location, member))
    location = _text(body, "initialLocation")
    if location:
        link.attributes["occi.storagelink.deviceid"] = location
    return link


def collection_action(body: Body, *, insertable: bool) -> str:
    """What a POST on a machine's collection does: "add" (a new item), or the
    "insert" or "remove" Action of DSP0263 5.5.12.2-3 (an existing volume)."""
    if body.get("resourceURI") != SCHEMA + "Action" and "action" not in body:
        return "add"
    uri = _text(body, "action") or ""
    term = uri.removeprefix(ACTION)
    if term not in ("insert", "remove") or not uri.startswith(ACTION) or not insertable:
        raise BadRequest(f"{uri or 'no action'} is not an operation of this collection"
                         + ("; its operations are add, insert and remove" if insertable
                            else "; its operation is add"))
    return term


def as_entity(link: LinkSpec, source: str) -> EntitySpec:
    """A link sent on its own, from `source`."""
    return EntitySpec(kind=link.kind, attributes=dict(link.attributes), source=source,
                      target=link.target, target_kind=link.target_kind)


def volume_create(body: Body, refs: Refs) -> EntitySpec:
    return _from_template(body, refs, VOLUME_TEMPLATE, volume_spec)


def volume_spec(template: Body, refs: Refs) -> EntitySpec:
    """The storage a volume template (by value) describes."""
    _no_properties(template)
    spec = EntitySpec(kind=STORAGE.type_id)
    config = _object(template, "volumeConfig")
    if config is not None:
        capacity = volume_configuration(refs.template(config, VOLUME_CONFIGURATION,
                                                      "volumeConfig")).get("capacity")
        if capacity is not None:
            spec.attributes["occi.storage.size"] = capacity * KIB / GIB
    image = _object(template, "volumeImage")
    if image is not None:
        term = refs.member(image, MACHINE_IMAGE, "volumeImage")
        mixin = template_mixin(refs.model, IMAGE_TPL.type_id, term)
        if mixin is None:
            raise BadRequest(f"no image {term} to clone a volume from")
        spec.mixins.append(mixin.type_id)
    if "occi.storage.size" not in spec.attributes and image is None:
        raise BadRequest("volumeTemplate needs volumeConfig with capacity (KiB), or a "
                         "volumeImage to clone")
    return spec


def volume_configuration(config: Body, required: bool = False) -> Body:
    """A volume configuration's document: capacity in KiB, and the format and
    type this site offers (raw, on its pool)."""
    _no_properties(config)
    document: Body = {}
    capacity = _count(config, "capacity")
    if capacity is not None:
        document["capacity"] = capacity
    elif required:
        raise BadRequest("a volume configuration needs capacity (KiB)")
    for name, offered in (("format", "raw"), ("type", SCHEMA + "VolumeType/default")):
        value = _text(config, name)
        if value is not None and value != offered:
            raise BadRequest(f"{name} {value!r} is not offered; this site's is {offered!r}")
    return document


def network_create(body: Body, refs: Refs) -> EntitySpec:
    """A network: private, or public (NAT to the site's uplink), with the
    address range and gateway it hands out (this site's extension attributes
    of a NetworkConfiguration: CIMI has none for them)."""
    _expect(body, "NetworkCreate")
    _no_properties(body)
    template = _object(body, "networkTemplate", required=True)
    assert template is not None
    if "href" in template:
        raise BadRequest("this site keeps no network templates: send networkTemplate by value")
    config = _object(template, "networkConfig", required=True)
    assert config is not None
    document = network_configuration(refs.template(config, NETWORK_CONFIGURATION,
                                                   "networkConfig"))
    spec = EntitySpec(kind=NETWORK.type_id, attributes=_named(body))
    if "address" in document:
        spec.mixins.append(IPNETWORK.type_id)
        spec.attributes["occi.network.address"] = document["address"]
        if "gateway" in document:
            spec.attributes["occi.network.gateway"] = document["gateway"]
    if document["networkType"] == "PUBLIC":
        spec.mixins.append(PUBLIC_NETWORK.type_id)
    return spec


def network_configuration(config: Body) -> Body:
    _no_properties(config)
    network_type = _text(config, "networkType") or "PRIVATE"
    if network_type not in ("PRIVATE", "PUBLIC"):
        raise BadRequest(f"networkType must be PRIVATE or PUBLIC, not {network_type!r}")
    document: Body = {"networkType": network_type}
    for name in ("address", "gateway"):
        value = _text(config, name)
        if value:
            document[name] = value
    if network_type == "PUBLIC" and "address" not in document:
        raise BadRequest("a PUBLIC network needs address, the range it hands out "
                         "(e.g. \"10.80.0.0/24\")")
    if "gateway" in document and "address" not in document:
        raise BadRequest("gateway needs address, the range it belongs to")
    return document


def kept_document(cimi_type: CimiType, body: Body, refs: Refs
                  ) -> tuple[str | None, str | None, Body]:
    """The name, description and document of a template to keep, checked."""
    make = {CREDENTIAL.name: lambda: credential(body),
            MACHINE_TEMPLATE.name: lambda: machine_template(body, refs),
            VOLUME_TEMPLATE.name: lambda: volume_template(body, refs),
            VOLUME_CONFIGURATION.name: lambda: volume_configuration(body, required=True),
            NETWORK_CONFIGURATION.name: lambda: network_configuration(body)}[cimi_type.name]
    uri = body.get("resourceURI")
    if uri not in (None, cimi_type.uri, cimi_type.uri + "Create"):
        raise BadRequest(f"resourceURI {uri!r} is not {cimi_type.uri}")
    return _text(body, "name"), _text(body, "description"), make()


def kept_edit(body: Body) -> dict[str, str | None]:
    """What a PUT on a kept template may change: its name and description."""
    others = sorted(set(body) - {"resourceURI", "id", "name", "description", "operations",
                                 "created", "updated"})
    if others:
        raise BadRequest(f"only name and description of a template change ({', '.join(others)} "
                         "cannot); keep a new one instead")
    return {name: _text(body, name) for name in ("name", "description") if name in body}


def credential(body: Body) -> Body:
    """A Credential's document, from a CredentialCreate (its credentialTemplate)
    or a Credential sent as it is."""
    _no_properties(body)
    template = _object(body, "credentialTemplate")
    if template is not None and "href" in template:
        raise BadRequest("credentialTemplate must be sent by value")
    return {"publicKey": public_key(template if template is not None else body)}


def machine_template(body: Body, refs: Refs) -> Body:
    """A MachineTemplate's document: what a MachineCreate by reference uses,
    checked now as a create would check it."""
    machine_spec(body, refs)
    return {name: body[name] for name in ("machineConfig", "machineImage", "credential",
                                          "userData", "networkInterfaces", "interfaceTemplates",
                                          "volumes", "initialState")
            if name in body}


def volume_template(body: Body, refs: Refs) -> Body:
    volume_spec(body, refs)
    return {name: body[name] for name in ("volumeConfig", "volumeImage") if name in body}


def address_create(body: Body) -> EntitySpec:
    _expect(body, "AddressCreate")
    _no_properties(body)
    template = _object(body, "addressTemplate") or {}
    if "href" in template:
        raise BadRequest("this site keeps no address templates: send addressTemplate by value")
    spec = EntitySpec(kind=IPRESERVATION.type_id, attributes=_named(body))
    ip = _text(template, "ip")
    if ip:
        spec.attributes["occi.ipreservation.address"] = ip
    return spec


def image_capture(body: Body, refs: Refs) -> tuple[str, ActionSpec]:
    """A MachineImage added with a machine as its imageLocation: the machine
    whose disk to capture, and the OCCI save that does it."""
    _expect(body, "MachineImage")
    _no_properties(body)
    location = _object(body, "imageLocation", required=True)
    assert location is not None
    member = refs.member(location, MACHINE, "imageLocation")
    title = _text(body, "description") or _text(body, "name")
    return member, ActionSpec(COMPUTE_ACTION + "save", {"name": title} if title else {})


def edit(body: Body, kind: str) -> EntitySpec:
    """What a PUT may change: name and description; a machine's cpu and memory."""
    _no_properties(body)
    spec = EntitySpec(attributes=_named(body))
    if kind == COMPUTE.type_id:
        cpu, memory = _count(body, "cpu"), _count(body, "memory")
        if cpu is not None:
            spec.attributes["occi.compute.cores"] = cpu
        if memory is not None:
            spec.attributes["occi.compute.memory"] = memory * KIB / GIB
    return spec


def action(body: Body | None, kind: str, named: str | None) -> tuple[ActionSpec, str]:
    """An Action (its URI in the body, or the last segment of the href posted
    to) as the OCCI action that does it, and that action's term."""
    uri = None
    if body:
        _expect(body, "Action")
        uri = _text(body, "action")
    if uri is None and named is None:
        raise BadRequest("the body names no action: {\"resourceURI\": "
                         f"\"{SCHEMA}Action\", \"action\": \"{ACTION}start\"}}")
    if uri is not None and not uri.startswith(ACTION):
        raise BadRequest(f"unknown action {uri!r}")
    term = uri[len(ACTION):] if uri is not None else named
    if named is not None and term != named:
        raise BadRequest(f"the body's action {uri} is not the operation posted to ({named})")
    scheme, terms = ACTIONS_OF.get(kind, ("", {}))
    occi = terms.get(term or "")
    if occi is None:
        raise BadRequest(f"{ACTION}{term} is not an operation of this resource; its "
                         f"operations list what it offers now")
    attributes: dict[str, Any] = {}
    if body and body.get("force") is True and occi in ("stop", "restart"):
        attributes["method"] = "poweroff" if occi == "stop" else "cold"
    if occi == "save" and body and isinstance(body.get("name"), str):
        attributes["name"] = body["name"]
    return ActionSpec(scheme + occi, attributes), occi

"""What a CIMI request body asks for, as the OCCI specs the service validates:
MachineCreate, VolumeCreate, AddressCreate, a MachineVolume or
MachineNetworkInterface to add, an edit, an Action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from occi_server.cimi.resources import (
    ACTION,
    ACTIONS_OF,
    ADDRESS,
    KIB,
    MACHINE,
    MACHINE_CONFIGURATION,
    MACHINE_IMAGE,
    NETWORK_TYPE,
    SCHEMA,
    VOLUME,
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
    IPRESERVATION,
    NETWORK,
    NETWORKINTERFACE,
    OS_TPL,
    RESOURCE_TPL,
    SSH_KEY,
    STORAGE,
    STORAGELINK,
    USER_DATA,
)

Body = dict[str, Any]
# Turns an href (absolute, or relative to baseURI) into (segment, rest).
Resolve = Callable[[str], tuple[str, str]]


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


def _reference(resolve: Resolve, value: Body, what: CimiType, name: str) -> str:
    """The member id an `{"href": …}` names, checked to be one of `what`."""
    href = value.get("href")
    if not isinstance(href, str):
        raise BadRequest(f"{name} must be a reference: {{\"href\": \"{what.segment}/…\"}}")
    segment, rest = resolve(href)
    if segment != what.segment or not rest or "/" in rest:
        raise BadRequest(f"{name} {href!r} is not a {what.name}")
    return rest


def _location(kind_location: str | None, member: str) -> str:
    return f"{kind_location}{member}"


def machine_create(body: Body, model: Model, resolve: Resolve) -> EntitySpec:
    _expect(body, "MachineCreate")
    _no_properties(body)
    template = _object(body, "machineTemplate", required=True)
    assert template is not None
    if "href" in template:
        raise BadRequest("this site keeps no machine templates: send machineTemplate by value "
                         "(machineConfig and machineImage by reference)")
    spec = EntitySpec(kind=COMPUTE.type_id, attributes=_named(body))
    config = _object(template, "machineConfig", required=True)
    assert config is not None
    if "href" in config:
        term = _reference(resolve, config, MACHINE_CONFIGURATION, "machineConfig")
        mixin = template_mixin(model, RESOURCE_TPL.type_id, term)
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
    term = _reference(resolve, image, MACHINE_IMAGE, "machineImage")
    os_tpl = template_mixin(model, OS_TPL.type_id, term)
    if os_tpl is None:
        raise BadRequest(f"no machine image {term}")
    spec.mixins.append(os_tpl.type_id)
    credential = _object(template, "credential")
    if credential is not None:
        if "href" in credential:
            raise BadRequest("this site keeps no credentials: send credential by value, "
                             "{\"publicKey\": \"ssh-ed25519 …\"}")
        key = _text(credential, "publicKey") or _text(credential, "key")
        if not key:
            raise BadRequest("credential needs publicKey (an OpenSSH public key)")
        spec.mixins.append(SSH_KEY.type_id)
        spec.attributes["occi.credentials.ssh.publickey"] = key
    user_data = _text(template, "userData")
    if user_data:
        spec.mixins.append(USER_DATA.type_id)
        spec.attributes["occi.compute.userdata"] = user_data
    for interface in _list(template, "networkInterfaces"):
        spec.links.append(interface_link(interface, resolve))
    for attachment in _list(template, "volumes"):
        spec.links.append(volume_link(attachment, resolve))
    return spec


def _list(body: Body, name: str) -> list[Body]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f"{name} must be a list of objects")
    return value


def interface_link(body: Body, resolve: Resolve) -> LinkSpec:
    """A MachineNetworkInterface: to a network, or to an address (a reserved
    public address led to the machine)."""
    _no_properties(body)
    if body.get("address") is not None:
        address = _object(body, "address")
        assert address is not None
        member = _reference(resolve, address, ADDRESS, "address")
        return LinkSpec(kind=NETWORKINTERFACE.type_id, target_kind=IPRESERVATION.type_id,
                        target=_location(IPRESERVATION.location, member))
    target = _object(body, "network", required=True)
    assert target is not None
    member = _reference(resolve, target, NETWORK_TYPE, "network")
    return LinkSpec(kind=NETWORKINTERFACE.type_id, target_kind=NETWORK.type_id,
                    target=_location(NETWORK.location, member))


def volume_link(body: Body, resolve: Resolve) -> LinkSpec:
    """A MachineVolume: a volume attached at initialLocation (a device path)."""
    _no_properties(body)
    target = _object(body, "volume", required=True)
    assert target is not None
    if "href" not in target:
        raise BadRequest("volume must be a reference: create the volume first")
    member = _reference(resolve, target, VOLUME, "volume")
    link = LinkSpec(kind=STORAGELINK.type_id, target_kind=STORAGE.type_id,
                    target=_location(STORAGE.location, member))
    location = _text(body, "initialLocation")
    if location:
        link.attributes["occi.storagelink.deviceid"] = location
    return link


def as_entity(link: LinkSpec, source: str) -> EntitySpec:
    """A link sent on its own, from `source`."""
    return EntitySpec(kind=link.kind, attributes=dict(link.attributes), source=source,
                      target=link.target, target_kind=link.target_kind)


def volume_create(body: Body, model: Model, resolve: Resolve) -> EntitySpec:
    _expect(body, "VolumeCreate")
    _no_properties(body)
    template = _object(body, "volumeTemplate", required=True)
    assert template is not None
    if "href" in template:
        raise BadRequest("this site keeps no volume templates: send volumeTemplate by value")
    spec = EntitySpec(kind=STORAGE.type_id, attributes=_named(body))
    config = _object(template, "volumeConfig")
    if config is not None:
        if "href" in config:
            raise BadRequest("this site keeps no volume configurations: send volumeConfig by "
                             "value, {\"capacity\": KiB}")
        capacity = _count(config, "capacity")
        if capacity is not None:
            spec.attributes["occi.storage.size"] = capacity * KIB / GIB
    image = _object(template, "volumeImage")
    if image is not None:
        term = _reference(resolve, image, MACHINE_IMAGE, "volumeImage")
        mixin = template_mixin(model, IMAGE_TPL.type_id, term)
        if mixin is None:
            raise BadRequest(f"no image {term} to clone a volume from")
        spec.mixins.append(mixin.type_id)
    if "occi.storage.size" not in spec.attributes and image is None:
        raise BadRequest("volumeTemplate needs volumeConfig with capacity (KiB), or a "
                         "volumeImage to clone")
    return spec


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


def image_capture(body: Body, resolve: Resolve) -> tuple[str, ActionSpec]:
    """A MachineImage added with a machine as its imageLocation: the machine
    whose disk to capture, and the OCCI save that does it."""
    _expect(body, "MachineImage")
    _no_properties(body)
    location = _object(body, "imageLocation", required=True)
    assert location is not None
    member = _reference(resolve, location, MACHINE, "imageLocation")
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

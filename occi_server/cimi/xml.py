"""CIMI's XML serialization (DSP0263 5.4, 5.5; beside JSON): the same
resources, in the namespace http://schemas.dmtf.org/cimi/2.

A resource is an element named by its type; scalars are child elements; a
reference is an empty element with an `href` attribute; an array is a
wrapper element named by the attribute holding one element per item, named
by the item type (`<operations><operation rel="…" href="…"/></operations>`);
properties are `<properties><property key="…">value</property></properties>`;
a collection is `<Collection resourceURI="…">` whose members are wrapped the
same way (`<machines><Machine>…</Machine></machines>`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from occi_server.errors import BadRequest

NAMESPACE = "http://schemas.dmtf.org/cimi/2"
# Array attributes and the name of their items' elements.
SINGULAR = {"operations": "operation", "disks": "disk", "addresses": "address",
            "networkInterfaces": "networkInterface", "interfaceTemplates": "interfaceTemplate",
            "volumes": "volume", "volumeTemplates": "volumeTemplate", "actions": "action",
            "machineVolumes": "MachineVolume", "capabilities": "capability",
            "attributes": "attribute"}
# Array items that are small structures: their fields are XML attributes
# (DSP0263 5.5.8), but for a capability's value, which is its text.
ATTRIBUTE_ITEMS = {"operation", "action", "capability", "attribute"}
# Elements whose text is a number or a boolean in JSON.
INTEGERS = {"cpu", "memory", "capacity", "count", "progress", "returnCode", "mtu"}
BOOLEANS = {"bootable", "force"}


def render(type_name: str, resource: dict[str, Any],
           members: tuple[str, str] | None = None) -> bytes:
    """`resource` (a JSON-shaped dict) as the XML document of a `type_name`;
    a collection (`members`: its array attribute and its members' type) is a
    `<Collection>` carrying its resourceURI."""
    root = ET.Element("Collection" if members else type_name, {"xmlns": NAMESPACE})
    if members:
        root.set("resourceURI", str(resource.get("resourceURI", "")))
    _fill(root, resource, dict([members]) if members else {})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _fill(element: ET.Element, values: dict[str, Any], items: dict[str, str]) -> None:
    for name, value in values.items():
        if name == "resourceURI":
            continue  # the element's name (a collection's attribute) says it
        if name == "properties":
            wrapper = ET.SubElement(element, "properties")
            for key, text in value.items():
                ET.SubElement(wrapper, "property", {"key": str(key)}).text = str(text)
        elif isinstance(value, list):
            wrapper = ET.SubElement(element, name)
            for item in value:
                _child(wrapper, items.get(name) or SINGULAR.get(name, name), item)
        else:
            _child(element, name, value)


def _child(parent: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, dict) and name in ATTRIBUTE_ITEMS:
        item = ET.SubElement(parent, name, {k: _text(v) for k, v in value.items()
                                            if k != "value"})
        if "value" in value:
            item.text = _text(value["value"])
        return
    if isinstance(value, dict):
        if value and set(value) <= {"href", "rel"}:
            ET.SubElement(parent, name, {k: str(v) for k, v in value.items()})
            return
        _fill(ET.SubElement(parent, name), value, {})
        return
    ET.SubElement(parent, name).text = _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(_text(item) for item in value)
    return str(value)


def parse(body: bytes) -> dict[str, Any]:
    """An XML request body as the JSON-shaped dict it stands for (its root
    element's name gives its resourceURI)."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise BadRequest("XML bodies may not carry a DOCTYPE or entities") from None
    except ET.ParseError as exc:
        raise BadRequest(f"the XML body is not well-formed: {exc}") from None
    values = _values(root)
    if not isinstance(values, dict):
        raise BadRequest(f"<{_local(root.tag)}> carries no attributes")
    values.setdefault("resourceURI", f"{NAMESPACE}/{_local(root.tag)}")
    return values


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _values(element: ET.Element) -> dict[str, Any] | str | int | bool:
    children = list(element)
    name = _local(element.tag)
    if not children:
        if "href" in element.attrib:
            return dict(element.attrib)
        text = (element.text or "").strip()
        if name in INTEGERS:
            try:
                return int(text)
            except ValueError:
                raise BadRequest(f"<{name}> must be an integer, not {text!r}") from None
        if name in BOOLEANS:
            if text not in ("true", "false"):
                raise BadRequest(f"<{name}> must be true or false, not {text!r}")
            return text == "true"
        return text
    values: dict[str, Any] = {}
    for child in children:
        child_name = _local(child.tag)
        if child_name == "properties":
            values["properties"] = {item.attrib.get("key", ""): item.text or ""
                                    for item in child}
        elif child_name in SINGULAR and (list(child) or "href" not in child.attrib):
            values[child_name] = [_values(item) for item in child]
        else:
            values[child_name] = _values(child)
    return values

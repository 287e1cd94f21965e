"""CIMI's XML serialization (DSP0263's second one, beside JSON): the same
resources, in the namespace http://schemas.dmtf.org/cimi/2.

A resource is an element named by its type with `resourceURI` as an
attribute; scalars are child elements; a reference is an empty element with
an `href` attribute; a list repeats its singular element (`operation`,
`disk`, members of a collection by their type name); properties are
`<property key="…">value</property>`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from occi_server.errors import BadRequest

NAMESPACE = "http://schemas.dmtf.org/cimi/2"
# Plural attribute names whose items are repeated singular elements.
SINGULAR = {"operations": "operation", "disks": "disk", "addresses": "address",
            "networkInterfaces": "networkInterface", "volumes": "volume"}
PLURAL = {singular: plural for plural, singular in SINGULAR.items()}
# Elements whose text is a number or a boolean in JSON.
INTEGERS = {"cpu", "memory", "capacity", "count", "progress", "returnCode", "mtu"}
BOOLEANS = {"bootable", "force"}


def render(type_name: str, resource: dict[str, Any], members: str | None = None) -> bytes:
    """`resource` (a JSON-shaped dict) as the XML document of a `type_name`;
    a collection's `members` list repeats elements named by the members' type."""
    root = ET.Element(type_name, {"xmlns": NAMESPACE})
    _fill(root, resource, members, type_name.removesuffix("Collection"))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _fill(element: ET.Element, values: dict[str, Any], members: str | None = None,
          member_type: str = "") -> None:
    for name, value in values.items():
        if name == "resourceURI":
            element.set("resourceURI", str(value))
        elif name == "properties":
            for key, text in value.items():
                ET.SubElement(element, "property", {"key": str(key)}).text = str(text)
        elif isinstance(value, list):
            singular = member_type if name == members else SINGULAR.get(name, name)
            for item in value:
                _child(element, singular, item)
        else:
            _child(element, name, value)


def _child(parent: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, dict):
        if set(value) <= {"href", "rel"} and value:
            ET.SubElement(parent, name, {k: str(v) for k, v in value.items()})
            return
        child = ET.SubElement(parent, name)
        _fill(child, value)
        return
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    ET.SubElement(parent, name).text = text


def parse(body: bytes) -> dict[str, Any]:
    """An XML request body as the JSON-shaped dict it stands for (its root
    element's name gives its resourceURI when it has none)."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise BadRequest("XML bodies may not carry a DOCTYPE or entities") from None
    except ET.ParseError as exc:
        raise BadRequest(f"the XML body is not well-formed: {exc}") from None
    values = _values(root)
    assert isinstance(values, dict)
    values.setdefault("resourceURI", f"{NAMESPACE}/{_local(root.tag)}")
    return values


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _values(element: ET.Element) -> dict[str, Any] | str | int | bool:
    children = list(element)
    if not children:
        if "href" in element.attrib:
            return {"href": element.attrib["href"]}
        text = (element.text or "").strip()
        name = _local(element.tag)
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
    values: dict[str, Any] = dict(element.attrib)
    for child in children:
        name = _local(child.tag)
        if name == "property":
            values.setdefault("properties", {})[child.attrib.get("key", "")] = child.text or ""
        elif name in PLURAL and not ("href" in child.attrib and not list(child)):
            values.setdefault(PLURAL[name], []).append(_values(child))
        else:
            values[name] = _values(child)
    return values

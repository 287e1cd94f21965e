"""We never advertise a name we do not honour: read our own /-/ and create an
entity with every advertised attribute of every kind and of every mixin."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.conftest import COMPUTE, NETWORK, NETWORKINTERFACE, STORAGE, STORAGELINK, Client

SERVER_SET = ("/mixin/backend/", "/mixin/monitoring/")
CREATABLE = {COMPUTE: "/compute/", STORAGE: "/storage/", NETWORK: "/network/",
             NETWORKINTERFACE: "/link/networkinterface/", STORAGELINK: "/link/storagelink/"}
# Values for the attributes whose type alone does not give a valid value.
SAMPLES = {
    "occi.compute.hostname": "host-1.example.org",
    "occi.network.address": "10.66.0.0/24",
    "occi.network.gateway": "10.66.0.1",
    "occi.networkinterface.address": "10.66.0.9",
    "occi.networkinterface.gateway": "10.66.0.1",
    "occi.networkinterface.mac": "52:54:00:00:00:42",
    "occi.networkinterface.allocation": "static",
    "occi.storagelink.deviceid": "/dev/vdc",
    "occi.storagelink.mountpoint": "/mnt/data",
    "occi.network.label": "external-dmz",
    "occi.compute.anti_affinity_group": "web-tier",
    "occi.compute.userdata": "I2Nsb3VkLWNvbmZpZwo=",
}


TEMPLATE_PARENTS = ("os_tpl", "resource_tpl", "image_tpl")


def sample(name: str, definition: dict[str, Any]) -> Any:
    value = typed_sample(name, definition)
    default = definition.get("default")
    if isinstance(value, float) and isinstance(default, float):
        return max(value, default)  # an image template's size is a minimum
    return value


def typed_sample(name: str, definition: dict[str, Any]) -> Any:
    if name in SAMPLES:
        return SAMPLES[name]
    pattern = definition.get("pattern", {})
    if "enum" in pattern:
        return pattern["enum"][-1]
    if pattern.get("type") == "integer":
        return int(pattern.get("minimum", 0)) + 1
    if definition["type"] == "number":
        return float(pattern.get("minimum", 0)) + 1.5
    if definition["type"] == "boolean":
        return True
    return f"value of {name}"


def cases(app: Flask) -> list[tuple[str, str | None]]:
    document = Client(app).json("/-/")
    found: list[tuple[str, str | None]] = [(k["scheme"] + k["term"], None)
                                           for k in document["kinds"]
                                           if k["scheme"] + k["term"] in CREATABLE]
    for mixin in document["mixins"]:
        for kind in mixin.get("applies") or list(CREATABLE):
            if kind in CREATABLE:
                found.append((kind, mixin["scheme"] + mixin["term"]))
    return found


@pytest.fixture
def model(client: Client) -> dict[str, Any]:
    return client.json("/-/")


def test_every_advertised_attribute_is_honoured(client: Client, model: dict[str, Any]) -> None:
    kinds = {k["scheme"] + k["term"]: k for k in model["kinds"]}
    mixins = {m["scheme"] + m["term"]: m for m in model["mixins"]}
    checked = 0
    for kind_id, mixin_id in cases(client.app):
        mixin = mixins.get(mixin_id or "")
        parent = mixin and "depends" not in mixin and mixin["term"] in TEMPLATE_PARENTS
        if mixin and (parent or mixin["location"].startswith(SERVER_SET)):
            continue  # template parents are not attachable; server-set mixins are not ours
        definitions = dict(kinds[kind_id]["attributes"])
        definitions.update(mixin["attributes"] if mixin and "attributes" in mixin else {})
        values = {name: sample(name, d) for name, d in definitions.items()
                  if d["mutable"] and not name.startswith("occi.core.")}
        values["occi.core.title"] = "every attribute"
        if "occi.networkinterface.mac" in values:  # each interface needs a MAC of its own
            values["occi.networkinterface.mac"] = f"52:54:00:00:01:{checked:02x}"
        document: dict[str, Any] = {"kind": kind_id, "attributes": values}
        if mixin_id:
            document["mixins"] = [mixin_id]
        created = []
        if kind_id in (NETWORKINTERFACE, STORAGELINK):
            target = client.network("10.66.0.0/24", "10.66.0.1") \
                if kind_id == NETWORKINTERFACE else client.storage()
            created += [client.compute(), target]
            document["source"] = {"location": created[0]}
            document["target"] = {"location": target}
        response = client.post_json(CREATABLE[kind_id], document)
        assert response.status_code == 201, (kind_id, mixin_id, response.get_data(as_text=True))
        location = response.headers["Location"].removeprefix("http://localhost")
        stored = client.attributes(location)
        for name, value in values.items():
            if kind_id in mixin_id_templates(mixins, mixin_id) and name in (
                    "occi.compute.cores", "occi.compute.memory"):
                continue  # a template's values win over the client's
            assert stored.get(name) == value, (kind_id, mixin_id, name)
        checked += len(values)
        # Advertised immutable attributes are rendered too.
        for name, definition in definitions.items():
            if not definition["mutable"] and name.endswith(".state"):
                assert name in stored
        for path in [location, *created]:  # networks may not overlap: each case starts afresh
            assert client.request("DELETE", path).status_code == 200
    assert checked > 60


def mixin_id_templates(mixins: dict[str, Any], mixin_id: str | None) -> set[str]:
    mixin = mixins.get(mixin_id or "")
    if mixin and "http://schemas.ogf.org/occi/infrastructure#resource_tpl" in mixin.get(
            "depends", []):
        return {COMPUTE}
    return set()

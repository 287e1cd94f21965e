"""GFD.229 and GFD.226: every rendering parses what it renders (parse ∘ render = identity)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from occi_server.core import Entity, Model
from occi_server.kinds import DEFAULT_FLAVOURS, builtin_categories, flavour_mixins
from occi_server.rendering.base import RenderContext, RequestData
from occi_server.rendering.json import JsonParser, JsonRenderer, validator
from occi_server.rendering.text import (
    TextOcciParser,
    TextOcciRenderer,
    TextPlainParser,
    TextPlainRenderer,
)
from occi_server.rendering.urilist import UriListParser, UriListRenderer
from tests.conftest import COMPUTE, CRTP, IPNETWORK, NETWORK, NETWORKINTERFACE, Client

MODEL = Model([*builtin_categories(), *flavour_mixins(DEFAULT_FLAVOURS)])
CTX = RenderContext(MODEL, "http://occi.example.org:8787")
PAIRS = [(TextPlainRenderer(), TextPlainParser()), (TextOcciRenderer(), TextOcciParser()),
         (JsonRenderer(), JsonParser())]


def request_for(rendered, media_type: str) -> RequestData:
    headers = [("Content-Type", media_type), *rendered.headers]
    return RequestData(body=rendered.body.encode(), headers=headers)


_strings = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


@st.composite
def computes(draw) -> Entity:
    attributes = {"occi.core.id": draw(st.uuids()).hex,
                  "occi.compute.cores": draw(st.integers(1, 64)),
                  "occi.compute.memory": draw(st.floats(0.25, 512, allow_nan=False)),
                  "occi.compute.state": draw(st.sampled_from(["active", "inactive"]))}
    if draw(st.booleans()):
        attributes["occi.core.title"] = draw(_strings)
    if draw(st.booleans()):
        attributes["occi.core.summary"] = draw(_strings)
    entity = Entity(id=attributes["occi.core.id"], kind=COMPUTE,
                    location=f"/compute/{attributes['occi.core.id']}",
                    mixins=draw(st.lists(st.sampled_from([CRTP + "small", IPNETWORK]),
                                         unique=True, max_size=1)),
                    attributes=attributes)
    if draw(st.booleans()):
        link_id = draw(st.uuids()).hex
        entity.links = [Entity(
            id=link_id, kind=NETWORKINTERFACE, location=f"/link/networkinterface/{link_id}",
            source=entity.location, target="/network/n1", target_kind=NETWORK,
            attributes={"occi.core.id": link_id, "occi.core.source": entity.location,
                        "occi.core.target": "/network/n1",
                        "occi.networkinterface.mac": "52:54:00:00:00:01"})]
    return entity


@pytest.mark.parametrize(("renderer", "parser"), PAIRS, ids=lambda x: type(x).__name__)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=computes())
def test_entity_round_trip(renderer, parser, entity: Entity) -> None:
    rendered = renderer.entity(entity, CTX)
    [spec] = parser.entities(request_for(rendered, parser.media_type), CTX)
    assert spec.kind == entity.kind
    assert spec.mixins == entity.mixins
    assert spec.attributes == entity.attributes
    assert [(link.target, link.kind, link.attributes) for link in spec.links] == [
        (link.target, link.kind, link.attributes) for link in entity.links]


@pytest.mark.parametrize(("renderer", "parser"), [
    *PAIRS[:2], (UriListRenderer(), UriListParser())], ids=lambda x: type(x).__name__)
def test_location_list_round_trip(renderer, parser) -> None:
    entities = [Entity(id=str(i), kind=COMPUTE, location=f"/compute/{i}") for i in range(3)]
    rendered = renderer.collection(entities, CTX)
    locations = parser.locations(request_for(rendered, parser.media_type), CTX)
    assert locations == [CTX.absolute(e.location) for e in entities]


@pytest.mark.parametrize(("renderer", "parser"), PAIRS, ids=lambda x: type(x).__name__)
def test_category_round_trip(renderer, parser) -> None:
    mixins = [m for m in MODEL.mixins() if m.location]
    rendered = renderer.categories(mixins, CTX)
    parsed = parser.categories(request_for(rendered, parser.media_type), CTX)
    assert [(c.type_id, c.location, c.title or "") for c in parsed] == [
        (m.type_id, m.location, m.title) for m in mixins]


def test_json_entity_rendering_duplicates_core_attributes_top_level(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="t"',
                          'X-OCCI-Attribute: occi.core.summary="s"')
    document = client.json(path)
    assert document["id"] == document["attributes"]["occi.core.id"]
    assert (document["title"], document["summary"]) == ("t", "s")
    assert not list(validator("resource.json").iter_errors(document))


def test_pre_12_json_with_nested_attributes(client: Client) -> None:
    response = client.post_json("/compute/", {"resources": [{
        "kind": COMPUTE,
        "attributes": {"occi": {"core": {"title": "nested"}, "compute": {"cores": 2}}}}]})
    assert response.status_code == 201, response.get_data(as_text=True)
    attributes = response.get_json()["attributes"]
    assert (attributes["occi.core.title"], attributes["occi.compute.cores"]) == ("nested", 2)


def test_unicode_in_text_occi_headers(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="café ☕"')
    response = client.get(path, accept="text/occi")
    assert response.headers["X-OCCI-Attribute"].isascii()
    parsed = TextOcciParser().entities(RequestData(b"", list(response.headers.items())), CTX)
    assert parsed[0].attributes["occi.core.title"] == "café ☕"
    assert json.loads(client.get(path, accept="application/json").get_data())[
        "title"] == "café ☕"

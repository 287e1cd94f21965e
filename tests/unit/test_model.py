"""The model is declared once: check that the declaration is consistent."""

from __future__ import annotations

import pytest

from occi_server.core import Kind, Mixin, Model
from occi_server.core.model import ENTITY
from occi_server.kinds import DEFAULT_FLAVOURS, builtin_categories, flavour_mixins

MODEL = Model([*builtin_categories(), *flavour_mixins(DEFAULT_FLAVOURS)])


@pytest.mark.parametrize("kind", MODEL.kinds(), ids=lambda k: k.term)
def test_every_kind_descends_from_entity(kind: Kind) -> None:
    assert MODEL.ancestry(kind)[-1].type_id == ENTITY


@pytest.mark.parametrize("kind", MODEL.kinds(), ids=lambda k: k.term)
def test_every_kind_but_entity_has_a_collection(kind: Kind) -> None:
    assert (kind.location is None) == (kind.type_id == ENTITY)
    assert kind.location is None or kind.location.endswith("/")


@pytest.mark.parametrize("kind", [k for k in MODEL.kinds() if k.states], ids=lambda k: k.term)
def test_state_machines_speak_of_declared_actions_and_states(kind: Kind) -> None:
    machine = kind.states
    terms = {a.term for a in kind.actions}
    assert set(machine.transitions) == terms
    state = {a.name: a for a in MODEL.kind_attributes(kind)}[machine.attribute]
    assert machine.initial in state.enum
    for transition in machine.transitions.values():
        assert transition.sources <= set(state.enum)
        assert transition.target is None or transition.target in state.enum


@pytest.mark.parametrize("category", MODEL.categories(), ids=lambda c: c.type_id)
def test_defaults_are_valid_values(category) -> None:
    for attribute in category.attributes:
        if attribute.default is not None:
            assert attribute.normalise(attribute.default) == attribute.default


def test_templates_depend_on_their_parent_and_apply_to_compute() -> None:
    for mixin in MODEL.mixins():
        if mixin.origin == "provider":
            assert MODEL.is_mixin_of(mixin.type_id,
                                     "http://schemas.ogf.org/occi/infrastructure#resource_tpl")
            assert MODEL.applies_to(mixin, MODEL.kind(
                "http://schemas.ogf.org/occi/infrastructure#compute"))


def test_mixin_defaults_win_over_kind_definitions() -> None:
    compute = MODEL.kind("http://schemas.ogf.org/occi/infrastructure#compute")
    large = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#large"
    assert MODEL.attributes(compute, [large])["occi.compute.cores"].default == 4


def test_mixin_locations_are_unique() -> None:
    locations = [c.location for c in MODEL.categories() if isinstance(c, Kind | Mixin)
                 and c.location]
    assert len(locations) == len(set(locations))


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("occi.compute.architecture", "x86_64", "x64"),
    ("occi.compute.cores", "4", 4),
    ("occi.compute.memory", 2, 2.0),
    ("occi.networkinterface.mac", "52-54-00-AA-BB-CC", "52:54:00:aa:bb:cc"),
    ("occi.network.address", "10.0.0.0/8", "10.0.0.0/8"),
])
def test_attribute_normalisation(name: str, value: object, expected: object) -> None:
    definitions = {}
    for category in MODEL.categories():
        definitions.update({a.name: a for a in category.attributes})
    assert definitions[name].normalise(value) == expected


@pytest.mark.parametrize(("name", "value"), [
    ("occi.compute.cores", 0), ("occi.compute.cores", 1.5), ("occi.compute.cores", True),
    ("occi.compute.memory", "lots"), ("occi.compute.hostname", "a'><disk"),
    ("occi.network.address", "10.0.0.1/8"), ("occi.network.vlan", 4096),
    ("occi.compute.architecture", "sparc"), ("occi.networkinterface.mac", "52:54:00"),
])
def test_attribute_rejections(name: str, value: object) -> None:
    definitions = {}
    for category in MODEL.categories():
        definitions.update({a.name: a for a in category.attributes})
    with pytest.raises(ValueError, match=name):
        definitions[name].coerce(value)

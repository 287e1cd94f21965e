"""Validation of client-supplied mixins and attributes against the model."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from occi_server.core import Attribute, Kind, Mixin, Model
from occi_server.errors import BadRequest, Conflict
from occi_server.kinds.infrastructure import (
    AVAILABILITY_ZONE,
    EQUIVALENT_MIXINS,
    IMAGE_TPL,
    LEGACY_PUBLIC_KEY,
    LEGACY_USER_DATA,
    OS_TPL,
    PUBLIC_NETWORK,
    RESOURCE_TPL,
    SSH_KEY,
    USER_DATA,
    USER_DATA_MAX_BYTES,
)

# Template families: at most one child of each per entity; a new one replaces the old.
TEMPLATE_FAMILIES = (OS_TPL.type_id, RESOURCE_TPL.type_id, IMAGE_TPL.type_id)
# Mixins that describe how a resource was created; they cannot be added later.
CREATION_ONLY = (SSH_KEY.type_id, USER_DATA.type_id, LEGACY_PUBLIC_KEY.type_id,
                 LEGACY_USER_DATA.type_id, OS_TPL.type_id, IMAGE_TPL.type_id,
                 PUBLIC_NETWORK.type_id, AVAILABILITY_ZONE.type_id)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}")


def template_family(model: Model, mixin: Mixin) -> str | None:
    """The template family (os_tpl, resource_tpl, …) a provider's mixin belongs to.
    A user-defined tag is never a template, whatever it depends on: it sets no
    sizes or image and does not replace an entity's template."""
    if mixin.origin == "user":
        return None
    for family in TEMPLATE_FAMILIES:
        if mixin.type_id != family and model.is_mixin_of(mixin.type_id, family):
            return family
    return None


def is_creation_only(model: Model, mixin: Mixin) -> bool:
    if mixin.origin == "user":
        return False  # a tag comes and goes, whatever it depends on
    return any(model.is_mixin_of(mixin.type_id, fixed) for fixed in CREATION_ONLY)


def resolve_mixins(model: Model, kind: Kind, mixin_ids: Iterable[str]) -> list[Mixin]:
    """The mixins named by a client: known, applicable to the kind, not
    server-managed, no two of one template family, no duplicate context data."""
    mixins: list[Mixin] = []
    for mixin_id in mixin_ids:
        mixin = model.mixin(mixin_id)
        if mixin is None:
            if model.get(mixin_id) is not None:
                raise BadRequest(f"{mixin_id} is not a mixin")
            raise BadRequest(f"unknown mixin {mixin_id}; GET /-/ lists the mixins offered")
        if mixin.managed:
            raise BadRequest(f"mixin {mixin_id} is set by the server and cannot be attached")
        if not model.applies_to(mixin, kind):
            raise BadRequest(f"mixin {mixin_id} does not apply to {kind.term}")
        if mixin.type_id in TEMPLATE_FAMILIES:
            raise BadRequest(f"{mixin_id} is the parent of the templates; attach one of its "
                             f"children (GET {mixin.location})")
        if mixin not in mixins:
            mixins.append(mixin)
    families: dict[str, Mixin] = {}
    for mixin in mixins:
        family = template_family(model, mixin)
        if family is None:
            continue
        if family in families:
            raise Conflict(f"{families[family].type_id} and {mixin.type_id} are both "
                           f"{family.rpartition('#')[2]} templates; give only one")
        families[family] = mixin
    ids = {m.type_id for m in mixins}
    for first, second in EQUIVALENT_MIXINS:
        if first in ids and second in ids:
            raise Conflict(f"{first} and {second} carry the same information; give only one")
    return mixins


def coerce_attributes(definitions: dict[str, Attribute], values: dict[str, Any],
                      *, what: str) -> dict[str, Any]:
    """Known attributes converted to their types. Unknown `occi.*` names are
    refused; other unknown names (provider extensions of other sites) are dropped."""
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            if name.startswith("occi."):
                raise BadRequest(f"attribute {name} is not defined for {what}; GET /-/ "
                                 "lists the attributes of each kind and mixin")
            continue
        if value is None:
            coerced[name] = None
            continue
        try:
            coerced[name] = definition.normalise(value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return coerced


def check_required(definitions: dict[str, Attribute], values: dict[str, Any],
                   *, what: str) -> None:
    missing = [n for n, d in definitions.items() if d.required and values.get(n) is None]
    if missing:
        raise BadRequest(f"{what} needs {', '.join(missing)}")


def check_entity_id(entity_id: Any) -> str:
    if not isinstance(entity_id, str) or not _ID.fullmatch(entity_id):
        raise BadRequest(
            f"occi.core.id {entity_id!r} cannot name a location: use 1-128 letters, digits "
            "and . _ ~ : - (a UUID is recommended)")
    return entity_id


def decode_user_data(name: str, value: str) -> bytes:
    """User data (attribute `name`) is Base64 as most clients send it, or plain
    text otherwise."""
    compact = "".join(value.split())
    data: bytes
    try:
        data = base64.b64decode(compact, validate=True) if compact else b""
    except (binascii.Error, ValueError):
        data = value.encode("utf-8")
    if len(data) > USER_DATA_MAX_BYTES:
        raise BadRequest(f"{name}: the user data is {len(data)} bytes; the limit is "
                         f"{USER_DATA_MAX_BYTES} bytes")
    return data

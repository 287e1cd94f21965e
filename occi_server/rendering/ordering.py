"""The order attributes are rendered in: id, title, summary, then the kind's
and mixins' declarations, then anything else by name. Values that are unset
are not rendered."""

from __future__ import annotations

from typing import Any

from occi_server.core import Entity, Model
from occi_server.core.model import FIRST_ATTRIBUTES


def ordered_attributes(entity: Entity, model: Model) -> list[tuple[str, Any]]:
    values = entity.attributes
    kind = model.kind(entity.kind)
    order, declared = model.attribute_order(kind, entity.mixins) if kind \
        else (FIRST_ATTRIBUTES, frozenset(FIRST_ATTRIBUTES))
    found = [(name, values[name]) for name in order if values.get(name) is not None]
    found += sorted((name, value) for name, value in values.items()
                    if name not in declared and value is not None)
    return found

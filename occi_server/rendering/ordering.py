"""The order attributes are rendered in: id, title, summary, then the kind's
and mixins' declarations, then anything else by name. Values that are unset
are not rendered."""

from __future__ import annotations

from typing import Any

from occi_server.core import Entity, Model


def ordered_attributes(entity: Entity, model: Model) -> dict[str, Any]:
    values = entity.attributes
    return {name: values[name]
            for name in model.rendered_order(entity.kind, entity.mixins, tuple(values))
            if values[name] is not None}

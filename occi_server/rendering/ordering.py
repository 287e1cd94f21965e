"""The order attributes are rendered in: id, title, summary, then the kind's
and mixins' declarations, then anything else by name. Values that are unset
are not rendered."""

from __future__ import annotations

from typing import Any

from occi_server.core import Entity, Model


def ordered_attributes(entity: Entity, model: Model) -> list[tuple[str, Any]]:
    values = entity.attributes
    kind = model.kind(entity.kind)
    declared = list(model.attributes(kind, entity.mixins)) if kind else []
    names = ["occi.core.id", "occi.core.title", "occi.core.summary"]
    names += [n for n in declared if n not in names]
    names += sorted(n for n in values if n not in names)
    return [(name, values[name]) for name in names if values.get(name) is not None]

"""What a client asked for, as parsed from any rendering, before validation.

Parsers produce these; the service validates them against the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LinkSpec:
    """A link as sent inline with a resource, or on its own."""

    target: str | None = None
    kind: str | None = None
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    target_kind: str | None = None
    source: str | None = None
    self_location: str | None = None


@dataclass
class EntitySpec:
    """A resource or link rendering sent by a client (create, update, replace)."""

    kind: str | None = None
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[LinkSpec] = field(default_factory=list)
    # For links: where they go (also accepted as occi.core.source/target attributes).
    source: str | None = None
    target: str | None = None
    target_kind: str | None = None
    # Actions the client echoed back (ignored, but tolerated on PUT).
    actions: list[str] = field(default_factory=list)


@dataclass
class ActionSpec:
    """An action invocation: the action's type identifier and its parameters."""

    action: str | None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class CategorySpec:
    """A category rendering sent by a client: a user mixin, or a filter."""

    term: str
    scheme: str
    category_class: str | None = None
    title: str | None = None
    rel: list[str] = field(default_factory=list)
    location: str | None = None
    attributes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    applies: list[str] = field(default_factory=list)

    @property
    def type_id(self) -> str:
        return self.scheme + self.term


@dataclass
class Filter:
    """Collection or query-interface filter: categories and exact attribute values."""

    categories: list[CategorySpec] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.categories or self.attributes)

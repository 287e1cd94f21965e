"""Entity instances (resources and links) as neutral data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Entity:
    """A resource or link. `attributes` holds every attribute value, including
    `occi.core.*`; `location` is the path of the entity on this server.

    For links, `source` is the source resource's location and `target` the
    target's location (or an absolute URI outside this server)."""

    id: str
    kind: str
    location: str
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    target: str | None = None
    target_kind: str | None = None
    # The server's own name for it, unique in the store: every infrastructure
    # object behind it (file, LV, target, domain, bridge) is named from this key,
    # never from the id a client may have chosen. Empty until stored.
    key: str = ""
    # Who it belongs to (None until stored), and whether every tenant may see it.
    tenant: str | None = None
    owner: str | None = None
    shared: bool = False
    # When it was stored and last changed (None until stored).
    created: datetime | None = None
    updated: datetime | None = None
    # Filled in when rendered: outgoing links (resources) and applicable actions.
    links: list[Entity] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def is_link(self) -> bool:
        return self.source is not None

    @property
    def title(self) -> str | None:
        return self.attributes.get("occi.core.title")

"""What links share: the two kinds they join, how they are planned at request
time (device names, addresses), plugged in by their job and unplugged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from occi_server.core import Entity, Kind
from occi_server.service.rooms.base import Room

if TYPE_CHECKING:
    from occi_server.service.work import Work


class LinkRoom(Room):
    source_kind: Kind
    target_kind: Kind

    def implied_mixins(self, target: Entity) -> list[str]:
        """Mixins a new link gets from its target (an IP network's interfaces)."""
        return []

    def plan(self, work: Work, link: Entity, target: Entity, siblings: list[Entity]) -> None:
        """Check and complete a new link before it is stored; `siblings`: the
        source's other links of this kind."""

    def plug(self, work: Work, link: Entity, source: Entity, target: Entity) -> dict[str, Any]:
        """Plug the target into the source (in the link's job); the link's attributes."""
        raise NotImplementedError

    def unplug(self, work: Work, link: Entity, source: Entity, target: Entity | None) -> None:
        """Take the link out of the source (target None: it is gone already)."""
        raise NotImplementedError

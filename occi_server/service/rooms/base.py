"""What is particular to one resource kind, in one room: its checks beyond the
model, its defaults, how its infrastructure is made and changed, and its own
actions. `Work` keeps the transaction, tenancy and orchestration, and asks the
room of the entity's kind; adding a kind is a room and a line in the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from occi_server.core import Action, Entity, Kind, Mixin

if TYPE_CHECKING:
    from occi_server.service.work import Work

# An action carried out by the room itself (not by the backend's act), answering
# with the entity, or with what the action made (a snapshot, a saved os_tpl).
RoomAction = Callable[["Work", Entity, dict[str, Any]], Entity | Mixin]
# Work a change needs after the backend took it (in the job), given the entity
# as changed and the backend's answer; returns what it adds to that answer.
AfterChange = Callable[[Entity, dict[str, Any]], dict[str, Any]]


class Room:
    kind: Kind
    actions: dict[str, RoomAction] = {}

    def check_mixins(self, work: Work, mixins: list[Mixin], attributes: dict[str, Any]) -> None:
        """Refuse a create whose mixins do not fit this kind here (before anything is made)."""

    def defaults(self, work: Work, attributes: dict[str, Any], templated: bool) -> None:
        """Fill in what a new entity of this kind gets when the request leaves it out."""

    def check_new(self, work: Work, entity: Entity) -> None:
        """Refuse a new entity the model allows but the site cannot make."""

    def provision(self, work: Work, entity: Entity) -> dict[str, Any]:
        """Create the infrastructure behind a new resource (in its job); its
        attributes. Every resource kind's room says how; links are plugged."""
        raise NotImplementedError

    def check_change(self, work: Work, entity: Entity, changes: dict[str, Any]) -> None:
        """Refuse a change of stored attributes the infrastructure cannot follow."""

    def after_change(self, work: Work, entity: Entity,
                     changes: dict[str, Any]) -> AfterChange | None:
        """What a change needs beyond the backend's update, planned at request time."""
        return None

    def check_action(self, work: Work, entity: Entity, action: Action) -> None:
        """Refuse an action the state machine allows but the entity's links do not."""

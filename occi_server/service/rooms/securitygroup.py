"""Security groups: rules checked and stored in one spelling; a group is data
(nothing of the infrastructure is made for it) whose changes reach the filters
of every interface of its computes in the change's job. A group in use cannot
be deleted (its links go first)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from occi_server.core import Entity
from occi_server.errors import BadRequest
from occi_server.kinds.infrastructure import SECURITY_RULES, SECURITYGROUP
from occi_server.kinds.rules import parse_rules
from occi_server.service.rooms.base import AfterChange, Room
from occi_server.service.security import guard_compute

if TYPE_CHECKING:
    from occi_server.service.work import Work


def _normalised(entity: Entity) -> None:
    try:
        rules = parse_rules(entity.attributes.get(SECURITY_RULES, []))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    entity.attributes[SECURITY_RULES] = [rule.rendered() for rule in rules]


class SecurityGroupRoom(Room):
    kind = SECURITYGROUP

    def defaults(self, work: Work, attributes: dict[str, Any], templated: bool) -> None:
        attributes.setdefault(SECURITY_RULES, [])

    def check_new(self, work: Work, entity: Entity) -> None:
        _normalised(entity)

    def provision(self, work: Work, entity: Entity) -> dict[str, Any]:
        return {"occi.securitygroup.state": "active",
                "occi.securitygroup.state.message": "rules in force on the interfaces of "
                                                    "its computes"}

    def check_change(self, work: Work, entity: Entity, changes: dict[str, Any]) -> None:
        if SECURITY_RULES in changes:
            entity.attributes.setdefault(SECURITY_RULES, [])
            _normalised(entity)
            changes[SECURITY_RULES] = entity.attributes[SECURITY_RULES]

    def after_change(self, work: Work, entity: Entity,
                     changes: dict[str, Any]) -> AfterChange | None:
        if SECURITY_RULES not in changes:
            return None
        computes = [link.source for link in work.repo.links_to(entity.id)]
        compute_ids = [found.id for found in map(work.repo.everywhere().by_location,
                                                 filter(None, computes)) if found]

        def refilter(_group: Entity, _done: dict[str, Any]) -> dict[str, Any]:
            for compute_id in compute_ids:
                guard_compute(work.store, work.backends, compute_id,
                              work.settings.security_default_rules)
            return {}
        return refilter

"""Security group links: a compute in a group, once. Linking and unlinking
refilter every interface of the compute in the link's job (a compute in no
group is filtered by the site's default rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from occi_server.core import Entity
from occi_server.errors import Conflict
from occi_server.kinds.infrastructure import COMPUTE, SECURITYGROUP, SECURITYGROUPLINK
from occi_server.service.rooms.links import LinkRoom
from occi_server.service.security import guard_compute

if TYPE_CHECKING:
    from occi_server.service.work import Work


class SecurityGroupLinkRoom(LinkRoom):
    kind, source_kind, target_kind = SECURITYGROUPLINK, COMPUTE, SECURITYGROUP

    def plan(self, work: Work, link: Entity, target: Entity, siblings: list[Entity]) -> None:
        for sibling in siblings:
            if sibling.target == target.location:
                raise Conflict(f"{link.source} is in {target.location} already "
                               f"({sibling.location})")

    def plug(self, work: Work, link: Entity, source: Entity, target: Entity) -> dict[str, Any]:
        guard_compute(work.store, work.backends, source.id,
                      work.settings.security_default_rules)
        return {"occi.securitygrouplink.state": "active",
                "occi.securitygrouplink.state.message": "the group's rules filter the "
                                                        "compute's interfaces"}

    def unplug(self, work: Work, link: Entity, source: Entity, target: Entity | None) -> None:
        guard_compute(work.store, work.backends, source.id,
                      work.settings.security_default_rules, without=link.id)

"""Storage links: a volume attached to one compute at a time, while online,
at a device name the compute does not use yet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from occi_server.core import Entity
from occi_server.errors import Conflict
from occi_server.kinds.infrastructure import COMPUTE, STORAGE, STORAGELINK
from occi_server.service.rooms.links import LinkRoom

if TYPE_CHECKING:
    from occi_server.service.work import Work

DEVICE = "occi.storagelink.deviceid"


class StorageLinkRoom(LinkRoom):
    kind, source_kind, target_kind = STORAGELINK, COMPUTE, STORAGE

    def plan(self, work: Work, link: Entity, target: Entity, siblings: list[Entity]) -> None:
        if target.attributes.get("occi.storage.state") == "offline":
            raise Conflict(f"{target.location} is offline; bring it online before attaching it")
        for existing in work.repo.links_to(target.id):
            raise Conflict(f"{target.location} is already attached to {existing.source} "
                           f"({existing.location}); detach it first")
        used = {sibling.attributes.get(DEVICE) for sibling in siblings}
        if not link.attributes.get(DEVICE):
            link.attributes[DEVICE] = next(f"/dev/vd{letter}"
                                           for letter in "bcdefghijklmnopqrstuvwxyz"
                                           if f"/dev/vd{letter}" not in used)
        elif link.attributes[DEVICE] in used:
            raise Conflict(f"device {link.attributes[DEVICE]} is already in use on "
                           f"{link.source}")

    def plug(self, work: Work, link: Entity, source: Entity, target: Entity) -> dict[str, Any]:
        return work.backends.compute.attach_storage(source, link, target,
                                                    work.backends.storage.source(target))

    def unplug(self, work: Work, link: Entity, source: Entity, target: Entity | None) -> None:
        work.backends.compute.detach_storage(source, link)

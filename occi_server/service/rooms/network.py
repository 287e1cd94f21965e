"""Networks: IPv4 addressing that overlaps no other network of the site, public
networks with an address to masquerade, and addresses that never change under
interfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from occi_server.core import Entity
from occi_server.errors import BadRequest, Conflict
from occi_server.kinds.infrastructure import NETWORK, NETWORK_ADDRESSING, PUBLIC_NETWORK
from occi_server.service.ipam import check_network
from occi_server.service.rooms.base import Room

if TYPE_CHECKING:
    from occi_server.service.work import Work


class NetworkRoom(Room):
    kind = NETWORK

    def check_new(self, work: Work, entity: Entity) -> None:
        """IPv4, a gateway inside, no overlap with another network; public ones need an address."""
        # Every network of the site counts; the caller learns only of those it may see.
        visible = {other.id for other in work.repo.list(kinds=[NETWORK.type_id])}
        others = [(other.location if other.id in visible else None,
                   other.attributes["occi.network.address"])
                  for other in work.repo.everywhere().list(kinds=[NETWORK.type_id])
                  if other.id != entity.id and other.attributes.get("occi.network.address")]
        cidr = entity.attributes.get("occi.network.address")
        check_network(cidr, entity.attributes.get("occi.network.gateway"), others)
        if PUBLIC_NETWORK.type_id in entity.mixins and not cidr:
            raise BadRequest("a public network needs occi.network.address (the CIDR to "
                             "masquerade)")

    def check_change(self, work: Work, entity: Entity, changes: dict[str, Any]) -> None:
        if NETWORK_ADDRESSING.intersection(changes):
            if work.repo.links_to(entity.id):
                raise Conflict(f"{entity.location} has interfaces; its addresses cannot change "
                               "under them (delete them first, or create another network)")
            self.check_new(work, entity)

    def provision(self, work: Work, entity: Entity) -> dict[str, Any]:
        return work.backends.network.create(entity)

"""IP reservations: a public address of one of the site's floating IP pools,
held by the store (a second holder is refused however many requests race),
counted by the public_ips quota and kept until the reservation is deleted.
A compute is reached at it through a networkinterface to the reservation (as
rOCCI-server's clients link one): the address then leads to the compute's
interface on a public network (1:1 NAT), and follows the link when it is
deleted and made to another compute."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from occi_server.backends.base import Backends
from occi_server.core import Entity, Mixin
from occi_server.errors import BackendFailure, BackendUnavailable, BadRequest, Conflict
from occi_server.kinds.infrastructure import (
    COMPUTE,
    FLOATINGIPPOOL,
    IPRESERVATION,
    NETWORK,
    NETWORKINTERFACE,
    PUBLIC_NETWORK,
    RESERVED_ADDRESS,
    pool_scheme,
)
from occi_server.service.ipam import free_addresses
from occi_server.service.jobs import busy_with
from occi_server.service.rooms.base import Room
from occi_server.service.rooms.links import LinkRoom
from occi_server.store import Repository, Store

if TYPE_CHECKING:
    from occi_server.service.work import Work

log = logging.getLogger("occi_server.reservations")
USED = "occi.ipreservation.used"


def _pool_of(entity: Entity, scheme: str) -> str | None:
    return next((mixin_id.removeprefix(scheme) for mixin_id in entity.mixins
                 if mixin_id.startswith(scheme)), None)


class IPReservationRoom(Room):
    kind = IPRESERVATION

    def check_mixins(self, work: Work, mixins: list[Mixin], attributes: dict[str, Any]) -> None:
        pools = [m.term for m in mixins if m.type_id != FLOATINGIPPOOL.type_id
                 and work.model.is_mixin_of(m.type_id, FLOATINGIPPOOL.type_id)]
        if len(pools) > 1:
            raise BadRequest(f"an IP reservation takes its address from one pool, not "
                             f"{' and '.join(pools)}")

    def check_new(self, work: Work, entity: Entity) -> None:
        """The pool (the one named, or the site's only one) and a free address of it."""
        configured = work.settings.floating_ip_pools
        scheme = pool_scheme(work.settings.site_scheme)
        pool = _pool_of(entity, scheme)
        if pool is None:
            if len(configured) != 1:
                raise (Conflict("this site has no floating IP pool") if not configured else
                       BadRequest("name the pool: add one of the floatingippool mixins ("
                                  + ", ".join(scheme + name for name in configured)
                                  + ")"))
            pool = next(iter(configured))
            entity.mixins.append(scheme + pool)
        network = ipaddress.IPv4Network(configured[pool])
        requested = entity.attributes.get(RESERVED_ADDRESS)
        if requested is not None:
            if ipaddress.ip_address(requested) not in network:
                raise BadRequest(f"{requested} is not in the pool {pool} ({network})")
            if not work.repo.reserve_public(pool, str(requested), entity.id):
                raise Conflict(f"{requested} is reserved already; leave "
                               f"{RESERVED_ADDRESS} out to get a free address of {pool}")
            return
        taken = work.repo.reserved_public(pool)
        for address in free_addresses(network, taken):
            if work.repo.reserve_public(pool, address, entity.id):
                entity.attributes[RESERVED_ADDRESS] = address
                return
        raise Conflict(f"the pool {pool} has no free address left")

    def provision(self, work: Work, entity: Entity) -> dict[str, Any]:
        return {"occi.ipreservation.state": "active",
                "occi.ipreservation.state.message": "reserved; a networkinterface from a "
                                                    "compute leads it there"}

    def check_change(self, work: Work, entity: Entity, changes: dict[str, Any]) -> None:
        if RESERVED_ADDRESS in changes:
            raise BadRequest(f"{RESERVED_ADDRESS} cannot change; reserve another address and "
                             "delete this reservation")


class ReservationLinkRoom(LinkRoom):
    """A networkinterface from a compute to an IP reservation."""

    kind, source_kind, target_kind = NETWORKINTERFACE, COMPUTE, IPRESERVATION

    def plan(self, work: Work, link: Entity, target: Entity, siblings: list[Entity]) -> None:
        for holder in work.repo.links_to(target.id):
            raise Conflict(f"{target.location} leads to {holder.source} already "
                           f"({holder.location}); delete that link first")
        if _private_interface(work.repo, link.source or "") is None:
            raise Conflict(f"{link.source} has no interface on a public network for "
                           f"{target.location} to lead to; link it to one first")
        link.attributes["occi.networkinterface.address"] = target.attributes[RESERVED_ADDRESS]
        target.attributes[USED] = True
        work.repo.update(target)

    def plug(self, work: Work, link: Entity, source: Entity, target: Entity) -> dict[str, Any]:
        with work.store.transaction(write=False) as repo:
            found = _private_interface(repo, source.location)
        if found is None:
            raise Conflict(f"{source.location} has no interface on a public network anymore")
        _publish(work.backends, target, found)
        return {"occi.networkinterface.state": "active",
                "occi.networkinterface.state.message":
                    f"{source.location} is reached at {target.attributes[RESERVED_ADDRESS]}"}

    def unplug(self, work: Work, link: Entity, source: Entity, target: Entity | None) -> None:
        if target is None:
            return
        work.backends.network.unpublish(target.key, target.attributes[RESERVED_ADDRESS])
        with work.store.transaction(write=True) as repo:
            stored = repo.get(target.id)
            if stored is not None:
                stored.attributes[USED] = False
                repo.update(stored)


def follow_interfaces(store: Store, backends: Backends, compute_id: str, without: str) -> None:
    """After the compute's interface `without` went (in its job): the addresses
    reserved for the compute lead to its next interface on a public network, or
    nowhere; never to an address another guest may be given next. A compute
    being deleted is left alone: its reservation links go with it."""
    with store.transaction(write=False) as repo:
        compute = repo.get(compute_id)
        if compute is None or busy_with(repo, compute_id, "deleting"):
            return
        leads = [repo.by_location(link.target or "")
                 for link in repo.links_from([compute.id])[compute.id]
                 if link.target_kind == IPRESERVATION.type_id]
        found = _private_interface(repo, compute.location, without)
    for reservation in filter(None, leads):
        if found is None:
            backends.network.unpublish(reservation.key, reservation.attributes[RESERVED_ADDRESS])
        else:
            _publish(backends, reservation, found)


def _publish(backends: Backends, reservation: Entity, interface: tuple[Entity, Entity]
             ) -> None:
    """Lead the reservation's address to an interface (and its public network)."""
    link, network = interface
    backends.network.publish(reservation.key, reservation.attributes[RESERVED_ADDRESS],
                             link.attributes["occi.networkinterface.address"], network)


def _private_interface(repo: Repository, compute_location: str, without: str | None = None
                       ) -> tuple[Entity, Entity] | None:
    """The compute's first interface (not `without`) with an address on a public
    network, and that network."""
    compute = repo.by_location(compute_location)
    if compute is None:
        return None
    for link in repo.links_from([compute.id])[compute.id]:
        if link.kind != NETWORKINTERFACE.type_id or link.target_kind != NETWORK.type_id \
                or link.id == without:
            continue
        network = repo.by_location(link.target or "")
        if network is not None and PUBLIC_NETWORK.type_id in network.mixins \
                and link.attributes.get("occi.networkinterface.address"):
            return link, network
    return None


def repair_published(repo: Repository, backends: Backends) -> int:
    """Publish again the reservations whose NAT vanished, and withdraw what is
    published for no reservation link; how many were repaired."""
    network = backends.network
    try:
        present = network.published()
    except (BackendFailure, BackendUnavailable) as exc:
        log.warning("reserved addresses not checked: %s", exc)
        return 0
    wanted: dict[str, tuple[Entity, Entity]] = {}
    for link in repo.list(kinds=[NETWORKINTERFACE.type_id]):
        reservation = repo.by_location(link.target or "") \
            if link.target_kind == IPRESERVATION.type_id else None
        if reservation is not None and link.attributes.get(
                "occi.networkinterface.state") == "active":
            wanted[reservation.key] = (link, reservation)
    repaired = 0
    for key in present.keys() - wanted.keys():
        network.unpublish(key, present[key])
        repaired += 1
    for key, (link, reservation) in wanted.items():
        if key in present:
            continue
        found = _private_interface(repo, link.source or "")
        if found is None:
            continue
        try:
            _publish(backends, reservation, found)
        except (BackendFailure, BackendUnavailable) as exc:
            log.warning("%s could not be published again: %s", reservation.location, exc)
            continue
        log.warning("published %s again, whose NAT had vanished", reservation.location)
        repaired += 1
    return repaired

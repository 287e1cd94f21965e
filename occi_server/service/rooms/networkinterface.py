"""Network interfaces: a MAC unique on the site and, on an IP network, an
address no other interface holds (the store refuses a second holder, however
many requests race); bound to the network, then plugged into the guest."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from occi_server.core import Entity
from occi_server.errors import BackendFailure, BadRequest, Conflict
from occi_server.kinds.infrastructure import (
    COMPUTE,
    IPNETWORK,
    IPNETWORKINTERFACE,
    NETWORK,
    NETWORKINTERFACE,
)
from occi_server.service.ipam import choose_address
from occi_server.service.rooms.ipreservation import follow_interfaces
from occi_server.service.rooms.links import LinkRoom
from occi_server.service.security import guard_compute

if TYPE_CHECKING:
    from occi_server.service.work import Work


def allocate_mac(work: Work, link: Entity) -> None:
    requested = link.attributes.get("occi.networkinterface.mac")
    if requested:
        mac = str(requested).lower().replace("-", ":")
        if int(mac[:2], 16) & 1:
            raise BadRequest(f"{requested} is a multicast MAC; an interface needs a unicast one")
        if not work.repo.allocate_mac(mac, link.id):
            raise Conflict(f"MAC {mac} cannot be given to this interface; choose another, "
                           "or leave occi.networkinterface.mac out to get one")
    else:
        # QEMU's locally administered prefix, as libvirt assigns; retried if taken.
        mac = next(candidate for candidate in (
            "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
            for _ in range(1000)) if work.repo.allocate_mac(candidate, link.id))
    link.attributes["occi.networkinterface.mac"] = mac


class NetworkInterfaceRoom(LinkRoom):
    kind, source_kind, target_kind = NETWORKINTERFACE, COMPUTE, NETWORK

    def implied_mixins(self, target: Entity) -> list[str]:
        return [IPNETWORKINTERFACE.type_id] if IPNETWORK.type_id in target.mixins else []

    def plan(self, work: Work, link: Entity, target: Entity, siblings: list[Entity]) -> None:
        link.attributes["occi.networkinterface.interface"] = f"eth{len(siblings)}"
        allocate_mac(work, link)
        cidr = target.attributes.get("occi.network.address")
        if not cidr:
            return
        values = link.attributes
        allocation = values.get("occi.networkinterface.allocation") or "dynamic"
        requested = values.get("occi.networkinterface.address")
        if allocation == "static" and not requested:
            raise BadRequest("static allocation needs occi.networkinterface.address")
        gateway = target.attributes.get("occi.network.gateway")
        taken = work.repo.allocated_addresses(target.id)
        while True:
            address = choose_address(cidr, gateway, taken, requested)
            if work.repo.allocate_address(target.id, address, link.id):
                break
            if requested:
                raise Conflict(f"address {requested} is already in use on {cidr}")
            taken.add(address)
        values["occi.networkinterface.address"] = address
        if gateway:
            values["occi.networkinterface.gateway"] = gateway
        values["occi.networkinterface.allocation"] = allocation

    def plug(self, work: Work, link: Entity, source: Entity, target: Entity) -> dict[str, Any]:
        """Bound, filtered (before the guest's first packet), then plugged in."""
        network = work.backends.network
        bound = network.bind(link, target)
        link.attributes.update(bound)
        try:
            guard_compute(work.store, work.backends, source.id,
                          work.settings.security_default_rules, only=link.id)
            return {**bound, **work.backends.compute.attach_network(
                source, link, target, network.bridge(target))}
        except BackendFailure:
            network.unguard(link.key)
            network.unbind(link, target)
            raise

    def unplug(self, work: Work, link: Entity, source: Entity, target: Entity | None) -> None:
        work.backends.compute.detach_network(source, link)
        if target is not None:
            work.backends.network.unbind(link, target)
        work.backends.network.unguard(link.key)
        follow_interfaces(work.store, work.backends, source.id, without=link.id)

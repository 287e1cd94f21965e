"""The room of each resource and link kind (see base.py). Adding a kind: its
room, and a line here."""

from __future__ import annotations

from occi_server.service.rooms.base import Room
from occi_server.service.rooms.compute import ComputeRoom
from occi_server.service.rooms.ipreservation import IPReservationRoom, ReservationLinkRoom
from occi_server.service.rooms.links import LinkRoom
from occi_server.service.rooms.network import NetworkRoom
from occi_server.service.rooms.networkinterface import NetworkInterfaceRoom
from occi_server.service.rooms.securitygroup import SecurityGroupRoom
from occi_server.service.rooms.securitygrouplink import SecurityGroupLinkRoom
from occi_server.service.rooms.storage import StorageRoom
from occi_server.service.rooms.storagelink import StorageLinkRoom

ROOMS: dict[str, Room] = {room.kind.type_id: room for room in (
    ComputeRoom(), StorageRoom(), NetworkRoom(), NetworkInterfaceRoom(), StorageLinkRoom(),
    SecurityGroupRoom(), SecurityGroupLinkRoom(), IPReservationRoom())}
# Links by (link kind, target kind): a networkinterface to an IP reservation
# (as rOCCI's clients link one) is not one to a network.
LINK_ROOMS: dict[tuple[str, str], LinkRoom] = {
    (room.kind.type_id, room.target_kind.type_id): room
    for room in (*(room for room in ROOMS.values() if isinstance(room, LinkRoom)),
                 ReservationLinkRoom())}
_PLAIN = Room()


def link_room(kind_id: str | None, target_kind: str) -> LinkRoom | None:
    """The room of links of `kind_id` (None: of any kind) to a `target_kind`."""
    return next((room for (kind, target), room in LINK_ROOMS.items()
                 if target == target_kind and kind_id in (None, kind)), None)


def room_of(kind_id: str) -> Room:
    """The room of a kind; a kind without one gets the plain room (no rules of its own)."""
    return ROOMS.get(kind_id, _PLAIN)

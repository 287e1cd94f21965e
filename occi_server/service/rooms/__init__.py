"""The room of each resource and link kind (see base.py). Adding a kind: its
room, and a line here."""

from __future__ import annotations

from occi_server.service.rooms.base import Room
from occi_server.service.rooms.compute import ComputeRoom
from occi_server.service.rooms.links import LinkRoom
from occi_server.service.rooms.network import NetworkRoom
from occi_server.service.rooms.networkinterface import NetworkInterfaceRoom
from occi_server.service.rooms.securitygroup import SecurityGroupRoom
from occi_server.service.rooms.securitygrouplink import SecurityGroupLinkRoom
from occi_server.service.rooms.storage import StorageRoom
from occi_server.service.rooms.storagelink import StorageLinkRoom

ROOMS: dict[str, Room] = {room.kind.type_id: room for room in (
    ComputeRoom(), StorageRoom(), NetworkRoom(), NetworkInterfaceRoom(), StorageLinkRoom(),
    SecurityGroupRoom(), SecurityGroupLinkRoom())}
LINK_ROOMS: dict[str, LinkRoom] = {kind: room for kind, room in ROOMS.items()
                                   if isinstance(room, LinkRoom)}
_PLAIN = Room()


def room_of(kind_id: str) -> Room:
    """The room of a kind; a kind without one gets the plain room (no rules of its own)."""
    return ROOMS.get(kind_id, _PLAIN)

"""IP addresses and MACs, each held by one interface at most (the store's unique
indexes refuse a second holder, however many requests race)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from occi_server.store.records.base import Records
from occi_server.store.records.driven import send_waiting
from occi_server.store.tables import ip_allocations, mac_allocations, public_addresses


class AllocationRecords(Records):
    def allocated_addresses(self, network_id: str) -> set[str]:
        # Taken from the driver at once (a network may hold tens of thousands:
        # SQLAlchemy's rows, one by one, took most of such a create's time).
        result = self.connection.execute(select(ip_allocations.c.address).where(
            ip_allocations.c.network_id == network_id))
        addresses = {address for address, in result.cursor.fetchall()}
        result.close()
        return addresses

    def allocate_address(self, network_id: str, address: str, link_id: str) -> bool:
        """Reserve an address on a network for a link; False if another link holds it."""
        return self._claim(ip_allocations, network_id=network_id, address=address,
                           link_id=link_id)

    def reserved_public(self, pool: str) -> set[str]:
        return set(self.connection.scalars(select(public_addresses.c.address).where(
            public_addresses.c.pool == pool)))

    def reserve_public(self, pool: str, address: str, reservation_id: str) -> bool:
        """Hold a public address of a pool for a reservation; False if another holds it."""
        return self._claim(public_addresses, pool=pool, address=address,
                           reservation_id=reservation_id)

    def allocate_mac(self, mac: str, link_id: str) -> bool:
        """Reserve a MAC for a link; False if another link holds it."""
        return self._claim(mac_allocations, mac=mac, link_id=link_id)

    def _claim(self, table: Any, **row: str) -> bool:
        # A savepoint, so that a refused row leaves the transaction usable
        # (the writes waiting go first: a refusal of theirs is not this one's).
        send_waiting(self.connection)
        try:
            with self.connection.begin_nested():
                self.connection.execute(insert(table).values(**row))
        except IntegrityError:
            return False
        return True

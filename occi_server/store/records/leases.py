"""Leases: a named role (the reconciler) or a process's liveness, held until
an instant; the holder renews it, anyone may take it once it has expired."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from occi_server.store.records.base import Records, _now
from occi_server.store.records.generation import UPSERT
from occi_server.store.tables import leases


class LeaseRecords(Records):
    def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease `name` for `seconds`; False while another
        holder's has not expired."""
        now = _now()
        expires = now + timedelta(seconds=seconds)
        renewed = self.connection.execute(update(leases).where(
            (leases.c.name == name) & ((leases.c.holder == holder) | (leases.c.expires < now)))
            .values(holder=holder, expires=expires))
        if renewed.rowcount:
            return True
        # Whether the row was made is what RETURNING gives back (the driver's
        # rowcount of an INSERT … ON CONFLICT is not to be trusted).
        made = self.connection.execute(UPSERT[self.connection.dialect.name](leases).values(
            name=name, holder=holder, expires=expires).on_conflict_do_nothing(
            index_elements=[leases.c.name]).returning(leases.c.name)).first()
        return made is not None

    def release_lease(self, name: str, holder: str) -> None:
        self.connection.execute(delete(leases).where(
            (leases.c.name == name) & (leases.c.holder == holder)))

    def leases(self, prefix: str = "") -> dict[str, tuple[str, datetime]]:
        """Lease name -> (holder, expiry), for the names starting with `prefix`."""
        rows = self.connection.execute(select(leases).where(leases.c.name.startswith(prefix)))
        return {name: (holder, expires) for name, holder, expires in rows}

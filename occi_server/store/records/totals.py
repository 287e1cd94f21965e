"""What each tenant's entities add up to, kind by kind (tenant_totals): moved
on by every write of an entity in its own transaction (accounting's record
sees each one, see usage.py), so that a quota check reads a row a kind
instead of summing every entity of the tenant (25 ms a create, with the
store's write lock held, for a tenant of 10 000). A transaction's changes
are added up as it goes and written as it ends, rows in one order: two
transactions on PostgreSQL never wait for each other's rows crosswise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, bindparam, cast, delete, func, insert, select

from occi_server.store.records.base import Records
from occi_server.store.records.driven import Driven
from occi_server.store.records.generation import UPSERT
from occi_server.store.tables import MILLIONTHS, TOTALLED, entities, tenant_totals

_OF_TENANT = Driven(select(tenant_totals).where(tenant_totals.c.tenant == bindparam("tenant")))


def _add(dialect: str) -> Any:
    upsert = UPSERT[dialect](tenant_totals)
    return upsert.on_conflict_do_update(
        index_elements=[tenant_totals.c.tenant, tenant_totals.c.kind],
        set_={column: tenant_totals.c[column] + upsert.excluded[column]
              for column in ("entities", *TOTALLED)})


_ADD = {dialect: Driven(_add(dialect)) for dialect in UPSERT}

_OF_KIND = (tenant_totals.c.tenant == bindparam("tenant")) \
    & (tenant_totals.c.kind == bindparam("kind"))
_FORGET = Driven(delete(tenant_totals).where(_OF_KIND))
_SUM_AGAIN = insert(tenant_totals).from_select(
    ["tenant", "kind", "entities", *TOTALLED],
    select(entities.c.tenant, entities.c.kind, func.count(),
           *(func.coalesce(func.sum(cast(func.round(
               entities.c.attributes[attribute].as_float() * MILLIONTHS), BigInteger)), 0)
             for attribute in TOTALLED.values()))
    .where((entities.c.tenant == bindparam("tenant")) & (entities.c.kind == bindparam("kind")))
    .group_by(entities.c.tenant, entities.c.kind))


# How a tenant's totals of a kind change: entities, then each TOTALLED column.
Change = list[int]


class TotalRecords(Records):
    _due: dict[tuple[str, str], Change]  # (tenant, kind): changes not written yet

    def totals(self, tenant: str) -> dict[str, dict[str, float]]:
        """Per kind the tenant owns entities of: how many ("count") and the sum
        of each attribute TOTALLED names (by the attribute's name), this
        transaction's changes included (added here, not written: reading
        takes no lock on PostgreSQL, so a quota check may read before it
        locks the tenant)."""
        found = {row.kind: [row.entities, *(getattr(row, column) for column in TOTALLED)]
                 for row in _OF_TENANT.rows(self.connection, {"tenant": tenant})}
        for (owner, kind), change in self._due.items():
            if owner == tenant:
                found[kind] = [sum(pair) for pair in zip(
                    found.get(kind, [0] * len(change)), change, strict=True)]
        return {kind: {"count": float(values[0]),
                       **{attribute: value / MILLIONTHS
                          for attribute, value in zip(TOTALLED.values(), values[1:],
                                                      strict=True)}}
                for kind, values in found.items() if values[0]}

    def _add_to_totals(self, tenant: str, kind: str, added: Mapping[str, Any] | None,
                       removed: Mapping[str, Any] | None) -> None:
        """An entity's attributes `added` (created, or as changed) and `removed`
        (deleted, or as they were before the change)."""
        change = [(added is not None) - (removed is not None),
                  *(_millionths(added, attribute) - _millionths(removed, attribute)
                    for attribute in TOTALLED.values())]
        due = self._due.setdefault((tenant, kind), [0] * len(change))
        due[:] = [sum(pair) for pair in zip(due, change, strict=True)]

    def _total_again(self, tenant: str, kind: str) -> None:
        """Sum a tenant's entities of a kind afresh (after a change whose values
        before are not known; what the transaction changed before is in the sum)."""
        self._due.pop((tenant, kind), None)
        values = {"tenant": tenant, "kind": kind}
        _FORGET.run(self.connection, values)
        self.connection.execute(_SUM_AGAIN, values)

    def settle_totals(self) -> None:
        """Write the changes the transaction made to totals (as it ends)."""
        add = _ADD[self.connection.dialect.name]
        for (tenant, kind), change in sorted(self._due.items()):
            if any(change):
                add.run_later(self.connection, {"tenant": tenant, "kind": kind,
                                                **dict(zip(("entities", *TOTALLED), change,
                                                           strict=True))})
        self._due.clear()


def _millionths(attributes: Mapping[str, Any] | None, name: str) -> int:
    """The attribute in whole millionths (0: absent, or not a number, as the
    database sums it afresh)."""
    value = attributes.get(name) if attributes is not None else None
    try:
        return round(float(value) * MILLIONTHS) if value is not None else 0
    except (TypeError, ValueError):
        return 0

"""Accounting's record: a usage event whenever what accounting sees of an entity
(its state, sizes, templates) changes, kept after the entity is gone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from occi_server.core import Entity
from occi_server.store.records.driven import Driven
from occi_server.store.records.totals import TotalRecords
from occi_server.store.tables import usage_events

_INSERT_EVENT = Driven(insert(usage_events))

# Attributes that accounting records when they change (TOTALLED among them:
# the tenants' totals move as these are recorded).
ACCOUNTED = ("occi.compute.cores", "occi.compute.memory", "occi.compute.hostname",
             "occi.compute.architecture", "occi.storage.size", "occi.networkinterface.address",
             "occi.core.source", "occi.core.target", "occi.core.title")


class UsageRecords(TotalRecords):
    _read_as: _ReadLog

    def _record(self, entity: Entity, event_name: str, now: datetime) -> None:
        """A usage event, when what accounting sees (state, sizes, templates) changed
        since the entity was read (or, for one not read here, since its last event);
        the tenant's totals move with the sizes."""
        state, details = _accounted(entity.attributes, entity.mixins)
        tenant = entity.tenant or ""
        if event_name == "changed":
            read = self._read_as.get(entity.id)
            before = _accounted(*read) if read is not None else None
            if before is None:
                last = self.connection.execute(
                    select(usage_events.c.state, usage_events.c.details)
                    .where(usage_events.c.entity_id == entity.id)
                    .order_by(usage_events.c.id.desc()).limit(1)).first()
                before = (last.state, last.details) if last is not None else None
            if before == (state, details):
                return
            if before is None:
                self._total_again(tenant, entity.kind)
            else:
                self._add_to_totals(tenant, entity.kind, details["attributes"],
                                    before[1].get("attributes", {}))
        else:
            self._add_to_totals(tenant, entity.kind, entity.attributes, None)
        self._read_as.wrote(entity)
        _INSERT_EVENT.run_later(self.connection, dict(
            time=now, entity_id=entity.id, kind=entity.kind, tenant=tenant,
            owner=entity.owner or "", event=event_name, state=state, details=details))

    def _record_gone(self, rows: Sequence[Any], now: datetime) -> None:
        """A `deleted` usage event for each stored row that went."""
        for row in rows:
            self._add_to_totals(row.tenant, row.kind, None, row.attributes)
            _INSERT_EVENT.run_later(self.connection, dict(
                time=now, entity_id=row.id, kind=row.kind, tenant=row.tenant, owner=row.owner,
                event="deleted", state=_state(row.attributes), details={}))

    def usage_events(self, *, until: datetime, kinds: Sequence[str] | None = None
                     ) -> list[dict[str, Any]]:
        """Usage events up to `until`, oldest first."""
        query = select(usage_events).where(usage_events.c.time < until)
        if kinds is not None:
            query = query.where(usage_events.c.kind.in_(list(kinds)))
        return [dict(row._mapping) for row in self.connection.execute(
            query.order_by(usage_events.c.id))]


class _ReadLog:
    """Each entity as this transaction last read or wrote it (attributes, mixins):
    accounting compares with it on update. Batches of rows read are indexed
    only when a write asks, so that reading large collections costs nothing
    here; the rows and mixin lists kept are not the ones entities were given."""

    def __init__(self) -> None:
        self._batches: list[tuple[Sequence[Any], Sequence[dict[str, Any]],
                                  dict[str, list[str]]]] = []
        self._seen: dict[str, tuple[dict[str, Any], Sequence[str]]] = {}

    def read(self, rows: Sequence[Any], attributes: Sequence[dict[str, Any]],
             mixins: dict[str, list[str]]) -> None:
        """Entities' rows read, their attributes (decoded) and mixins by id."""
        self._batches.append((rows, attributes, mixins))

    def wrote(self, entity: Entity) -> None:
        self._index()
        self._seen[entity.id] = (dict(entity.attributes), tuple(entity.mixins))

    def get(self, entity_id: str) -> tuple[dict[str, Any], Sequence[str]] | None:
        self._index()
        return self._seen.get(entity_id)

    def _index(self) -> None:
        # Every batch still here was read after the last write: newer than _seen.
        for rows, attributes, mixins in self._batches:
            for row, stored in zip(rows, attributes, strict=True):
                self._seen[row.id] = (stored, mixins.get(row.id, ()))
        self._batches.clear()


def _accounted(attributes: dict[str, Any], mixins: Sequence[str]
               ) -> tuple[str | None, dict[str, Any]]:
    """What accounting records of an entity: its state, and its sizes and mixins."""
    return _state(attributes), {
        "attributes": {k: attributes[k] for k in ACCOUNTED if attributes.get(k) is not None},
        "mixins": list(mixins)}


def _state(attributes: dict[str, Any]) -> str | None:
    """The value of the kind's state attribute (occi.compute.state, …)."""
    return next((str(v) for k, v in attributes.items()
                 if k.startswith("occi.") and k.endswith(".state") and k.count(".") == 2), None)

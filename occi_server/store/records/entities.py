"""Entities (resources and links) with their mixins, as this transaction's scope sees them.
Every write is recorded for accounting (UsageRecords) in the same transaction, so that
no path that changes an entity can escape it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    LargeBinary,
    Select,
    Text,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy import update as sql_update

from occi_server.core import Entity
from occi_server.kinds.infrastructure import SHARED
from occi_server.store.records.among import among, members
from occi_server.store.records.base import Prepared, _now, prepared, scoped
from occi_server.store.records.driven import Driven
from occi_server.store.records.generation import UPSERT
from occi_server.store.records.usage import UsageRecords
from occi_server.store.tables import (
    entities,
    entity_mixins,
    ip_allocations,
    mac_allocations,
    public_addresses,
    users,
)

# Where a listing got to: (created, id) of the last entity it gave.
Position = tuple[datetime, str]


# Entities after a position in creation order (keyset: the listing index),
# given as after_created and after_id (see _after).
_AFTER = tuple_(entities.c.created, entities.c.id) > tuple_(
    bindparam("after_created", type_=entities.c.created.type),
    bindparam("after_id", type_=entities.c.id.type))


def _after(after: Position) -> dict[str, Any]:
    """The values of _AFTER for a position."""
    created, entity_id = after
    return {"after_created": created, "after_id": entity_id}


# A write request locks the entity it acts on (PostgreSQL): two front ends'
# actions on one entity take turns, and the second sees what the first did.
_BY_ID = prepared(select(entities).where(entities.c.id == bindparam("id")), lockable=True,
                  driven=True)
_BY_LOCATION = prepared(select(entities).where(entities.c.location == bindparam("location")),
                        lockable=True, driven=True)
_LINKS_FROM = prepared(select(entities).where(among(entities.c.source_id, "sources")).order_by(
    entities.c.created, entities.c.id), driven=True)
_LINKS_FROM_ONE = prepared(select(entities).where(
    entities.c.source_id == bindparam("source")).order_by(entities.c.created, entities.c.id),
    driven=True)
# What a listing reads of an entity: its attributes as the text stored, decoded
# a page or a chunk at a time (one json.loads of a chunk's 1 000 took half the
# time of one each, as SQLAlchemy's JSON type decodes them).
_LISTED = tuple(cast(column, Text).label(column.name) if column is entities.c.attributes
                else column for column in entities.c)
# Where a row of the table's columns holds these: read by position, as reading
# a SQLAlchemy row's column by name took 0.57 µs against 0.04.
_ID, _SOURCE_ID, _ATTRIBUTES = (list(entities.c).index(column) for column in (
    entities.c.id, entities.c.source_id, entities.c.attributes))
# What a light listing reads of an entity: where it is (created: its position).
_LIGHT = (entities.c.id, entities.c.kind, entities.c.location, entities.c.created)
_POSITION_AT = Driven(select(entities.c.created, entities.c.id).where(
    entities.c.location == bindparam("location")))
# (database, number of kinds, from a position) -> a chunk of locations' statements
_LOCATION_CHUNKS: dict[tuple[str, int, bool], Prepared] = {}
# Written into the statement (aggregate_strings binds its separator as the
# statement runs, which a statement compiled once cannot).
_LINE_BREAK = literal_column("'\n'")


def _location_chunk(database: str, kinds: int, after: bool) -> Prepared:
    """What joins a chunk of locations (see location_chunk), for every scope:
    built and compiled once for this database, number of kinds and start
    (building it took 0.5 ms of a 10 000-location chunk's 4, and SQLAlchemy
    running it 0.3 more than the driver alone). Values: kind_0…, limit,
    after_created and after_id."""
    key = (database, kinds, after)
    found = _LOCATION_CHUNKS.get(key)
    if found is None:
        listing = select(entities.c.location, entities.c.created, entities.c.id).where(
            entities.c.kind.in_([bindparam(f"kind_{number}") for number in range(kinds)]))
        if after:
            listing = listing.where(_AFTER)
        joined = [_joined(visible.order_by(entities.c.created, entities.c.id), database)
                  for visible in (listing, scoped(listing))]
        found = _LOCATION_CHUNKS[key] = Prepared(*joined)
    return found


def _joined(listing: Select, database: str) -> Driven:
    """The locations `listing` reads, up to a limit, one a line, as the bytes
    sent (decoding them as text took 0.6 ms of the 2.6 a 10 000-location
    chunk's statement took, a one-off timing), and how many."""
    members = listing.limit(bindparam("limit")).subquery("members")
    if database == "postgresql":
        # Its aggregates take rows in an order of their own choosing unless
        # told; SQLite's (3.40 cannot be told) take them as the subquery's
        # ORDER BY and LIMIT give them, which the tests check.
        locations = func.convert_to(func.string_agg(members.c.location, _LINE_BREAK)
                                    .aggregate_order_by(members.c.created, members.c.id),
                                    literal_column("'UTF8'"), type_=LargeBinary)
    else:
        locations = cast(func.group_concat(members.c.location, _LINE_BREAK), LargeBinary)
    return Driven(select(locations, func.count()))


_LINKS_TO = Driven(select(entities).where(entities.c.target_id == bindparam("target_id")))
# Counted from the index of links' targets (their tenant and kind in it),
# target by target of the mixin's holders: a quota check in every create.
_LINKS_TO_MIXIN = Driven(select(func.count()).select_from(entities).where(
    (entities.c.tenant == bindparam("tenant")) & (entities.c.kind == bindparam("kind"))
    & entities.c.target_id.in_(select(entity_mixins.c.entity_id).where(
        entity_mixins.c.mixin == bindparam("mixin")))))
# The writes: run on the driver (see driven.py).
_INSERT = Driven(insert(entities))
_UPDATE = Driven(sql_update(entities).where(entities.c.id == bindparam("entity_id")))
_UPDATE_UNCHANGED = Driven(sql_update(entities).where(
    (entities.c.id == bindparam("entity_id")) & (entities.c.updated == bindparam("seen"))))
# An insert with a key drawn for it gives way when another entity holds the key
# (an id or location taken still refuses it).
_INSERT_UNLESS_KEY_TAKEN = {
    dialect: Driven(upsert(entities).on_conflict_do_nothing(index_elements=[entities.c.key]))
    for dialect, upsert in UPSERT.items()}
_INSERT_MIXINS = Driven(insert(entity_mixins))
_DELETE_MIXINS = Driven(delete(entity_mixins).where(
    entity_mixins.c.entity_id == bindparam("entity_id")))
# A deletion: the entity, its links (ON DELETE CASCADE too, for a database
# without cascades), what they hold of the address pools.
_LINKS_OF = select(entities.c.id).where(entities.c.source_id == bindparam("entity_id"))
_GOING = Driven(select(entities).where((entities.c.id == bindparam("entity_id"))
                                       | entities.c.id.in_(_LINKS_OF)))
_RELEASES = [delete(table).where((table.c.link_id == bindparam("entity_id"))
                                 | table.c.link_id.in_(_LINKS_OF))
             for table in (ip_allocations, mac_allocations)]
_DELETES = [Driven(statement) for statement in (
    *_RELEASES,
    delete(public_addresses).where(public_addresses.c.reservation_id == bindparam("entity_id")),
    delete(entities).where(entities.c.source_id == bindparam("entity_id")),
    delete(entities).where(entities.c.id == bindparam("entity_id")))]
# One entity's (most reads are of one): an equality, where unpacking a bound
# array of one (_MIXINS_OF, _LINKS_FROM) took 13 µs against 8.
_MIXINS_OF_ONE = Driven(select(entity_mixins.c.mixin).where(
    entity_mixins.c.entity_id == bindparam("entity_id")).order_by(
    entity_mixins.c.entity_id, entity_mixins.c.position))
_LOCATIONS_OF = Driven(select(entities.c.id, entities.c.location).where(
    among(entities.c.id, "ids")))
_MIXINS_OF = Driven(select(entity_mixins.c.entity_id, entity_mixins.c.mixin).where(
    among(entity_mixins.c.entity_id, "ids")).order_by(
    entity_mixins.c.entity_id, entity_mixins.c.position))

# A key is 12 hex digits: short enough for every name built from it (a bridge
# name "ob<key>" stays within Linux's 15 characters).
KEY_BYTES = 6


class EntityRecords(UsageRecords):
    def get(self, entity_id: str) -> Entity | None:
        found = self._hydrate(self._prepared(_BY_ID, id=entity_id))
        return found[0] if found else None

    def by_key(self, key: str) -> Entity | None:
        """The entity whose infrastructure is named by `key`, whoever's it is."""
        rows = self.connection.execute(select(entities).where(entities.c.key == key)).all()
        return self._hydrate(rows)[0] if rows else None

    def by_location(self, location: str) -> Entity | None:
        found = self._hydrate(self._prepared(_BY_LOCATION, location=location))
        return found[0] if found else None

    def tenants(self) -> set[str]:
        """Tenants that own entities or have users."""
        owning = set(self.connection.scalars(select(entities.c.tenant).distinct()))
        for row in self.connection.execute(select(users.c.tenants)):
            owning.update(row.tenants)
        return owning

    def links_to_mixin(self, tenant: str, link_kind: str, mixin: str) -> int:
        """How many links of a kind the tenant owns whose target carries the mixin."""
        return int(_LINKS_TO_MIXIN.rows(self.connection, {
            "tenant": tenant, "kind": link_kind, "mixin": mixin})[0][0])

    def of_tenant(self, tenant: str) -> list[Entity]:
        """Every entity a tenant owns (shared or not)."""
        return self._hydrate(self.connection.execute(
            select(entities).where(entities.c.tenant == tenant)).all())

    def list(self, *, kinds: Sequence[str] | None = None,
             mixin_families: Sequence[Sequence[str]] = (),
             location_prefix: str | None = None, offset: int = 0,
             limit: int | None = None, light: bool = False) -> list[Entity]:
        """Entities in creation order, narrowed by kind, mixin membership (one
        of each family's mixins) and path; from `offset`, at most `limit` of
        them. `light` ones carry their id, kind and location only (enough to say
        where they are; read without their attributes and mixins)."""
        query = self._listing(kinds, mixin_families, location_prefix,
                              _LIGHT if light else _LISTED)
        return self._entities(self.connection.execute(
            query.offset(offset or None).limit(limit)).all(), light)

    def chunk(self, *, after: Position | None, limit: int, kinds: Sequence[str] | None = None
              ) -> tuple[list[Entity], Position | None]:
        """The next `limit` entities in creation order after a position (None:
        from the first), and the position of the last one (None: no more)."""
        query = self._listing(kinds, (), None, _LISTED)
        if after is not None:
            query = query.where(_AFTER)
        rows = self.connection.execute(query.limit(limit),
                                       _after(after) if after is not None else {}).all()
        last = (rows[-1].created, rows[-1].id) if len(rows) == limit else None
        return self._hydrate(rows, _decoded(rows)), last

    def location_chunk(self, *, after: Position | None, limit: int, kinds: Sequence[str]
                       ) -> tuple[bytes, Position | None]:
        """The locations of the next `limit` entities of these kinds in creation
        order after a position, one a line, UTF-8 encoded (b"": none; no
        location holds a line break), and the position of the last one
        (None: no more). Read from the listing index alone and joined by the
        database: a row object per location cost more than the database's
        own work. One more than `limit` is read, to tell whether more follow:
        otherwise a list of exactly `limit` took another transaction to find
        none."""
        values: dict[str, Any] = {f"kind_{number}": kind for number, kind in enumerate(kinds)}
        values["limit"] = limit + 1
        if after is not None:
            values.update(_after(after))
        query = _location_chunk(self.connection.dialect.name, len(kinds), after is not None)
        locations, count = self._prepared(query, **values)[0]
        if count <= limit:
            return locations or b"", None
        locations = locations[:locations.rindex(b"\n")]
        created, last_id = _POSITION_AT.rows(
            self.connection, {"location": locations.rpartition(b"\n")[2].decode()})[0]
        return locations, (created, last_id)

    def _listing(self, kinds: Sequence[str] | None, mixin_families: Sequence[Sequence[str]],
                 location_prefix: str | None, columns: Sequence[Any]) -> Select:
        query = select(*columns)
        if kinds is not None:
            query = query.where(entities.c.kind.in_(list(kinds)))
        for family in mixin_families:
            # Probed row by row as the listing index is walked in order, so a
            # page stops at its last member (an IN list of every holder of the
            # mixin would be read whole first: a cost growing with the collection).
            query = query.where(exists().where(
                (entity_mixins.c.entity_id == entities.c.id)
                & entity_mixins.c.mixin.in_(list(family))))
        if location_prefix:
            query = query.where(entities.c.location.startswith(location_prefix, autoescape=True))
        return self._visible(query).order_by(entities.c.created, entities.c.id)

    def _entities(self, rows: Sequence[Any], light: bool) -> list[Entity]:
        if light:  # rows of the _LIGHT columns, unpacked as tuples (see _hydrate)
            return [Entity(id=id_, kind=kind, location=location)
                    for id_, kind, location, _created in rows]
        return self._hydrate(rows, _decoded(rows))

    def count(self) -> int:
        return self.connection.execute(
            self._visible(select(func.count()).select_from(entities))).scalar_one()

    def links_from(self, source_ids: Sequence[str]) -> dict[str, list[Entity]]:
        """Outgoing links of the given resources, by source id."""
        found: dict[str, list[Entity]] = {source_id: [] for source_id in source_ids}
        if not source_ids:
            return found
        rows = self._prepared(_LINKS_FROM_ONE, source=source_ids[0]) if len(source_ids) == 1 \
            else self._prepared(_LINKS_FROM, sources=members(source_ids))
        for link, row in zip(self._hydrate(rows), rows, strict=True):
            found[row.source_id].append(link)
        return found

    def links_to(self, entity_id: str) -> list[Entity]:
        """Every link to the entity, whatever its tenant: the service's checks and
        clean-ups need them all (a shared network's interfaces, for one)."""
        return self._hydrate(_LINKS_TO.rows(self.connection, {"target_id": entity_id}))

    def insert(self, entity: Entity, *, source_id: str | None = None,
               target_id: str | None = None) -> None:
        now = _now()
        tenant, owner = self._stamp()
        entity.tenant = entity.tenant or tenant
        entity.owner = entity.owner or owner
        entity.shared = SHARED.type_id in entity.mixins
        entity.created = entity.updated = now
        row = dict(
            id=entity.id, key=entity.key, kind=entity.kind, location=entity.location,
            source_id=source_id, target=entity.target, target_id=target_id,
            target_kind=entity.target_kind, attributes=entity.attributes, created=now,
            updated=now, tenant=entity.tenant, owner=entity.owner, shared=entity.shared)
        if entity.key:  # its own (adopted, copied): a second holder is refused
            _INSERT.run(self.connection, row)
        else:  # drawn again while another entity holds it (one statement a draw)
            unless_taken = _INSERT_UNLESS_KEY_TAKEN[self.connection.dialect.name]
            while True:
                row["key"] = secrets.token_hex(KEY_BYTES)
                if unless_taken.run(self.connection, row):
                    break
            entity.key = row["key"]
        self._write_mixins(entity)
        self._record(entity, "created", now)

    def update(self, entity: Entity, *, mixins: bool = True) -> None:
        """Store the entity as it is now; `mixins`=False: only its attributes
        changed since it was read (its mixins are not written again)."""
        now = _now()
        entity.shared = SHARED.type_id in entity.mixins
        entity.updated = now
        _UPDATE.run(self.connection, dict(
            entity_id=entity.id, attributes=entity.attributes, target_kind=entity.target_kind,
            updated=now, shared=entity.shared))
        if mixins:
            _DELETE_MIXINS.run_later(self.connection, {"entity_id": entity.id})
            self._write_mixins(entity)
        self._record(entity, "changed", now)

    def update_unless_changed(self, entity: Entity, was: Entity | None = None) -> bool:
        """Store the entity's attributes unless it was changed since it was read
        (its `updated`), by a request or a job meanwhile; whether they were.
        `was`: the entity as it was read or written then (accounting compares
        with it; without it, with the entity's last usage event)."""
        now = _now()
        if not _UPDATE_UNCHANGED.run(self.connection, dict(
                entity_id=entity.id, attributes=entity.attributes, updated=now,
                seen=entity.updated)):
            return False
        if was is not None:
            self._read_as.wrote(was)
        entity.updated = now
        self._record(entity, "changed", now)
        return True

    def delete(self, entity_id: str) -> None:
        """The entity goes, with its links and the addresses they hold."""
        now = _now()
        gone = _GOING.rows(self.connection, {"entity_id": entity_id})
        for statement in _DELETES:
            statement.run_later(self.connection, {"entity_id": entity_id})
        self._record_gone(gone, now)

    def _write_mixins(self, entity: Entity) -> None:
        if entity.mixins:
            _INSERT_MIXINS.run_later(self.connection, [
                {"entity_id": entity.id, "mixin": mixin, "position": position}
                for position, mixin in enumerate(entity.mixins)])

    def _hydrate(self, rows: Sequence[Any], attributes: Sequence[dict[str, Any]] | None = None
                 ) -> list[Entity]:
        """Entities of rows of the table's columns; `attributes`: theirs, decoded
        (rows of _LISTED carry them as text)."""
        if attributes is None:
            attributes = [row[_ATTRIBUTES] for row in rows]
        ids = [row[_ID] for row in rows]
        # Only entities with mixins are in it (most of a collection has none).
        mixins: dict[str, list[str]] = {}
        if len(ids) == 1:
            mixins[ids[0]] = [mixin for (mixin,) in _MIXINS_OF_ONE.rows(
                self.connection, {"entity_id": ids[0]})]
        elif ids:
            for entity_id, mixin in _MIXINS_OF.rows(self.connection, {"ids": members(ids)}):
                mixins.setdefault(entity_id, []).append(mixin)
        source_locations = self._locations_of({row[_SOURCE_ID] for row in rows
                                                if row[_SOURCE_ID]})
        self._read_as.read(rows, attributes, mixins)
        # Rows of select(entities) unpacked as tuples, in the table's column order:
        # reading each column by name cost a listing a fifth of its time.
        return [Entity(
            id=id_, key=key, kind=kind, location=location, mixins=list(mixins.get(id_, ())),
            attributes=dict(stored),
            source=source_locations.get(source_id) if source_id else None,
            target=target, target_kind=target_kind, tenant=tenant, owner=owner, shared=shared,
            created=created, updated=updated,
        ) for (id_, key, kind, location, source_id, target, _target_id, target_kind, _attributes,
               created, updated, tenant, owner, shared), stored in zip(rows, attributes,
                                                                       strict=True)]

    def _locations_of(self, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        return dict(_LOCATIONS_OF.rows(self.connection, {"ids": members(ids)}))


def _decoded(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The attributes of rows of _LISTED, decoded in one go."""
    return json.loads("[" + ",".join(row[_ATTRIBUTES] for row in rows) + "]")


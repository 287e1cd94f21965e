"""Persistence of entities and run-time mixins (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import logging
import secrets
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from occi_server.core import Entity, Mixin
from occi_server.errors import BackendUnavailable, Conflict
from occi_server.kinds.infrastructure import SHARED
from occi_server.store.tables import (
    categories,
    entities,
    entity_mixins,
    ip_allocations,
    jobs,
    mac_allocations,
    marketplace_entries,
    metadata,
    model_generation,
    usage_events,
    users,
)

# A key is 12 hex digits: short enough for every name built from it (a bridge
# name "ob<key>" stays within Linux's 15 characters).
KEY_BYTES = 6
log = logging.getLogger("occi_server.store")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The stores supported, each with its INSERT … ON CONFLICT.
_UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Scope:
    """On whose behalf a transaction reads and writes: the tenant it acts for
    and the user. `everything`: an operator, who sees every tenant's entities.
    Without a scope (the service's own work) everything is visible."""

    tenant: str
    owner: str
    everything: bool = False


DEFAULT_TENANT = "default"
# Attributes that accounting records when they change.
ACCOUNTED = ("occi.compute.cores", "occi.compute.memory", "occi.compute.hostname",
             "occi.compute.architecture", "occi.storage.size", "occi.networkinterface.address",
             "occi.core.source", "occi.core.target", "occi.core.title")


class Store:
    """The database. `transaction(write=…)` yields a Repository bound to one
    transaction, committed on success and rolled back on any exception."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            options["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **options)
        if self.is_sqlite:
            self._configure_sqlite()

    def _configure_sqlite(self) -> None:
        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's BEGIN (below) start transactions, not the driver.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # Writers take the lock up front, so two writers never deadlock
            # upgrading from a shared read lock.
            immediate = connection.info.get("write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def migrate(self) -> None:
        """Bring the schema up to date (alembic upgrade head)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as connection:
            connection.info["write"] = True
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()

    @contextmanager
    def transaction(self, *, write: bool, scope: Scope | None = None) -> Iterator[Repository]:
        try:
            with self.engine.connect() as connection:
                connection.info["write"] = write
                with connection.begin():
                    yield Repository(connection, scope)
        except OperationalError as exc:
            # The database's own words stay in the log: they may name other tenants' rows.
            log.warning("database unavailable: %s", exc.orig)
            raise BackendUnavailable("the database is busy or not available; nothing was "
                                     "changed, try again") from None
        except IntegrityError as exc:
            log.info("refused by a database constraint: %s", exc.orig)
            raise Conflict("the request conflicts with something this site already has (an "
                           "id, location or name taken, perhaps meanwhile); nothing was "
                           "changed") from None

    def dispose(self) -> None:
        self.engine.dispose()

    def copy_to(self, target: Store) -> dict[str, int]:
        """Copy every row into `target` (migrated, and empty: refused otherwise),
        in one transaction there; returns the rows copied per table."""
        target.migrate()
        copied = {}
        with self.engine.connect() as source, target.engine.begin() as destination:
            for table in metadata.sorted_tables:  # parents before the rows that refer to them
                if destination.execute(select(func.count()).select_from(table)).scalar():
                    raise Conflict(f"the target store already has {table.name}; copy into "
                                   "an empty database")
                rows = [dict(row._mapping) for row in source.execute(select(table))]
                if rows:
                    destination.execute(insert(table), rows)
                copied[table.name] = len(rows)
                if rows and target.engine.dialect.name == "postgresql" \
                        and table is usage_events:
                    # Rows came with their ids: the sequence continues after them.
                    destination.execute(text(
                        "SELECT setval(pg_get_serial_sequence('usage_events', 'id'), "
                        "(SELECT max(id) FROM usage_events))"))
        return copied


class Repository:
    """Reads and writes inside one transaction."""

    def __init__(self, connection: Connection, scope: Scope | None = None) -> None:
        self.connection = connection
        self.scope = scope
        self._read_as = _ReadLog()

    def everywhere(self) -> Repository:
        """The same transaction, seeing every tenant's entities (for checks that
        span tenants, such as overlapping networks or taken ids)."""
        everything = Repository(self.connection, None)
        everything._read_as = self._read_as
        return everything

    @property
    def sees_everything(self) -> bool:
        return self.scope is None or self.scope.everything

    def _visible(self, query: Any) -> Any:
        if self.sees_everything:
            return query
        assert self.scope is not None
        return query.where((entities.c.tenant == self.scope.tenant) | entities.c.shared)

    def _stamp(self) -> tuple[str, str]:
        """(tenant, owner) of what this transaction creates."""
        if self.scope is None:
            return DEFAULT_TENANT, "occi-server"
        return self.scope.tenant, self.scope.owner

    def lock_tenant(self, tenant: str) -> None:
        """Serialize this tenant's quota checks until the transaction ends (SQLite
        writers are serialized already)."""
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                    {"key": zlib.crc32(f"tenant:{tenant}".encode())})

    # ------------------------------------------------------------ entities
    def get(self, entity_id: str) -> Entity | None:
        rows = self.connection.execute(
            self._visible(select(entities).where(entities.c.id == entity_id))).all()
        found = self._hydrate(rows)
        return found[0] if found else None

    def by_key(self, key: str) -> Entity | None:
        """The entity whose infrastructure is named by `key`, whoever's it is."""
        rows = self.connection.execute(select(entities).where(entities.c.key == key)).all()
        return self._hydrate(rows)[0] if rows else None

    def by_location(self, location: str) -> Entity | None:
        rows = self.connection.execute(
            self._visible(select(entities).where(entities.c.location == location))).all()
        found = self._hydrate(rows)
        return found[0] if found else None

    def tenants(self) -> set[str]:
        """Tenants that own entities or have users."""
        owning = set(self.connection.scalars(select(entities.c.tenant).distinct()))
        for row in self.connection.execute(select(users.c.tenants)):
            owning.update(row.tenants)
        return owning

    def totals(self, tenant: str, attributes: Sequence[str]) -> dict[str, dict[str, float]]:
        """Per kind: how many entities the tenant owns ("count") and the sum of
        each numeric attribute, computed by the database."""
        sums = [func.coalesce(func.sum(entities.c.attributes[name].as_float()), 0)
                for name in attributes]
        found: dict[str, dict[str, float]] = {}
        for row in self.connection.execute(
                select(entities.c.kind, func.count(), *sums)
                .where(entities.c.tenant == tenant).group_by(entities.c.kind)):
            found[row[0]] = {"count": float(row[1]),
                             **{name: float(row[2 + n]) for n, name in enumerate(attributes)}}
        return found

    def links_to_mixin(self, tenant: str, link_kind: str, mixin: str) -> int:
        """How many links of a kind the tenant owns whose target carries the mixin."""
        marked = select(entity_mixins.c.entity_id).where(entity_mixins.c.mixin == mixin)
        return self.connection.execute(
            select(func.count()).select_from(entities).where(
                (entities.c.tenant == tenant) & (entities.c.kind == link_kind)
                & entities.c.target_id.in_(marked))).scalar_one()

    def of_tenant(self, tenant: str) -> list[Entity]:
        """Every entity a tenant owns (shared or not)."""
        return self._hydrate(self.connection.execute(
            select(entities).where(entities.c.tenant == tenant)).all())

    def list(self, *, kinds: Sequence[str] | None = None,
             mixins_any: Sequence[str] | None = None,
             location_prefix: str | None = None) -> list[Entity]:
        """Entities in creation order, narrowed by kind, mixin membership and path."""
        query = select(entities)
        if kinds is not None:
            query = query.where(entities.c.kind.in_(list(kinds)))
        if mixins_any is not None:
            member = select(entity_mixins.c.entity_id).where(
                entity_mixins.c.mixin.in_(list(mixins_any)))
            query = query.where(entities.c.id.in_(member))
        if location_prefix:
            query = query.where(entities.c.location.startswith(location_prefix, autoescape=True))
        query = self._visible(query).order_by(entities.c.created, entities.c.id)
        return self._hydrate(self.connection.execute(query).all())

    def count(self) -> int:
        return self.connection.execute(
            self._visible(select(func.count()).select_from(entities))).scalar_one()

    def links_from(self, source_ids: Sequence[str]) -> dict[str, list[Entity]]:
        """Outgoing links of the given resources, by source id."""
        found: dict[str, list[Entity]] = {source_id: [] for source_id in source_ids}
        for chunk in _chunks(list(source_ids), 500):
            rows = self.connection.execute(self._visible(
                select(entities).where(entities.c.source_id.in_(chunk)))
                .order_by(entities.c.created, entities.c.id)).all()
            for link, row in zip(self._hydrate(rows), rows, strict=True):
                found[row.source_id].append(link)
        return found

    def links_to(self, entity_id: str) -> list[Entity]:
        """Every link to the entity, whatever its tenant: the service's checks and
        clean-ups need them all (a shared network's interfaces, for one)."""
        rows = self.connection.execute(
            select(entities).where(entities.c.target_id == entity_id)).all()
        return self._hydrate(rows)

    def insert(self, entity: Entity, *, source_id: str | None = None,
               target_id: str | None = None) -> None:
        now = _now()
        tenant, owner = self._stamp()
        entity.tenant = entity.tenant or tenant
        entity.owner = entity.owner or owner
        entity.shared = SHARED.type_id in entity.mixins
        entity.key = entity.key or self._new_key()
        self.connection.execute(insert(entities).values(
            id=entity.id, key=entity.key, kind=entity.kind, location=entity.location,
            source_id=source_id, target=entity.target, target_id=target_id,
            target_kind=entity.target_kind, attributes=entity.attributes, created=now,
            updated=now, tenant=entity.tenant, owner=entity.owner, shared=entity.shared))
        self._write_mixins(entity)
        self._record(entity, "created", now)

    def _new_key(self) -> str:
        """A key no stored entity has (the unique index refuses a second holder
        should two writers draw the same one at once)."""
        while True:
            key = secrets.token_hex(KEY_BYTES)
            if self.connection.scalar(select(entities.c.id).where(entities.c.key == key)) is None:
                return key

    def update(self, entity: Entity) -> None:
        now = _now()
        entity.shared = SHARED.type_id in entity.mixins
        self.connection.execute(sql_update(entities).where(entities.c.id == entity.id).values(
            attributes=entity.attributes, target_kind=entity.target_kind, updated=now,
            shared=entity.shared))
        self.connection.execute(delete(entity_mixins).where(entity_mixins.c.entity_id == entity.id))
        self._write_mixins(entity)
        self._record(entity, "changed", now)

    def delete(self, entity_id: str) -> None:
        # Links of the entity go with it (ON DELETE CASCADE); deleted explicitly
        # as well so that a database without cascades behaves the same.
        now = _now()
        links = select(entities.c.id).where(entities.c.source_id == entity_id)
        gone = self.connection.execute(select(entities).where(
            (entities.c.id == entity_id) | entities.c.id.in_(links))).all()
        for table in (ip_allocations, mac_allocations):
            self.connection.execute(delete(table).where(
                (table.c.link_id == entity_id) | table.c.link_id.in_(links)))
        self.connection.execute(delete(entities).where(entities.c.source_id == entity_id))
        self.connection.execute(delete(entities).where(entities.c.id == entity_id))
        for row in gone:
            self.connection.execute(insert(usage_events).values(
                time=now, entity_id=row.id, kind=row.kind, tenant=row.tenant, owner=row.owner,
                event="deleted", state=_state(row.attributes), details={}))

    def _record(self, entity: Entity, event_name: str, now: datetime) -> None:
        """A usage event, when what accounting sees (state, sizes, templates) changed
        since the entity was read (or, for one not read here, since its last event)."""
        state, details = _accounted(entity.attributes, entity.mixins)
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
        self._read_as.wrote(entity)
        self.connection.execute(insert(usage_events).values(
            time=now, entity_id=entity.id, kind=entity.kind, tenant=entity.tenant or "",
            owner=entity.owner or "", event=event_name, state=state, details=details))

    def usage_events(self, *, until: datetime, kinds: Sequence[str] | None = None
                     ) -> list[dict[str, Any]]:
        """Usage events up to `until`, oldest first."""
        query = select(usage_events).where(usage_events.c.time < until)
        if kinds is not None:
            query = query.where(usage_events.c.kind.in_(list(kinds)))
        return [dict(row._mapping) for row in self.connection.execute(
            query.order_by(usage_events.c.id))]

    def allocated_addresses(self, network_id: str) -> set[str]:
        return set(self.connection.scalars(select(ip_allocations.c.address).where(
            ip_allocations.c.network_id == network_id)))

    def allocate_address(self, network_id: str, address: str, link_id: str) -> bool:
        """Reserve an address on a network for a link; False if another link holds it."""
        return self._claim(ip_allocations, network_id=network_id, address=address,
                           link_id=link_id)

    def allocate_mac(self, mac: str, link_id: str) -> bool:
        """Reserve a MAC for a link; False if another link holds it."""
        return self._claim(mac_allocations, mac=mac, link_id=link_id)

    def _claim(self, table: Any, **row: str) -> bool:
        # A savepoint, so that a refused row leaves the transaction usable.
        try:
            with self.connection.begin_nested():
                self.connection.execute(insert(table).values(**row))
        except IntegrityError:
            return False
        return True

    def _write_mixins(self, entity: Entity) -> None:
        if entity.mixins:
            self.connection.execute(insert(entity_mixins), [
                {"entity_id": entity.id, "mixin": mixin, "position": position}
                for position, mixin in enumerate(entity.mixins)])

    def remove_mixin_everywhere(self, mixin: str) -> None:
        self.connection.execute(delete(entity_mixins).where(entity_mixins.c.mixin == mixin))

    def _hydrate(self, rows: Sequence[Any]) -> list[Entity]:
        ids = [row.id for row in rows]
        mixins: dict[str, list[str]] = {entity_id: [] for entity_id in ids}
        for chunk in _chunks(ids, 500):
            for row in self.connection.execute(
                    select(entity_mixins).where(entity_mixins.c.entity_id.in_(chunk))
                    .order_by(entity_mixins.c.entity_id, entity_mixins.c.position)):
                mixins[row.entity_id].append(row.mixin)
        source_locations = self._locations_of({row.source_id for row in rows if row.source_id})
        self._read_as.read(rows, mixins)
        return [Entity(
            id=row.id, key=row.key, kind=row.kind, location=row.location,
            mixins=list(mixins[row.id]),
            attributes=dict(row.attributes),
            source=source_locations.get(row.source_id) if row.source_id else None,
            target=row.target, target_kind=row.target_kind, tenant=row.tenant, owner=row.owner,
            shared=row.shared,
        ) for row in rows]

    def _locations_of(self, ids: set[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(ids), 500):
            for row in self.connection.execute(
                    select(entities.c.id, entities.c.location).where(entities.c.id.in_(chunk))):
                found[row.id] = row.location
        return found

    # ------------------------------------------------------------ run-time mixins
    # ------------------------------------------------------------ jobs
    def insert_job(self, job_id: str, entity: Entity, operation: str) -> None:
        now = _now()
        self.connection.execute(insert(jobs).values(
            id=job_id, entity_id=entity.id, location=entity.location, operation=operation,
            state="running", progress="queued", error=None, created=now, updated=now,
            tenant=entity.tenant or self._stamp()[0]))

    def update_job(self, job_id: str, **values: str | None) -> None:
        self.connection.execute(sql_update(jobs).where(jobs.c.id == job_id).values(
            **values, updated=_now()))

    def jobs(self, *, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = self._own_jobs(select(jobs).order_by(jobs.c.created.desc()).limit(limit))
        if state is not None:
            query = query.where(jobs.c.state == state)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def running_jobs(self, entity_id: str) -> list[dict[str, Any]]:
        """The jobs still at work on an entity (whoever's)."""
        return [dict(row._mapping) for row in self.connection.execute(select(jobs).where(
            (jobs.c.entity_id == entity_id) & (jobs.c.state == "running")))]

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self.connection.execute(
            self._own_jobs(select(jobs).where(jobs.c.id == job_id))).first()
        return None if row is None else dict(row._mapping)

    def _own_jobs(self, query: Any) -> Any:
        if self.sees_everything:
            return query
        assert self.scope is not None
        return query.where(jobs.c.tenant == self.scope.tenant)

    # ------------------------------------------------------------ users
    def user(self, name: str) -> dict[str, Any] | None:
        row = self.connection.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else dict(row._mapping)

    def user_by_subject(self, subject_dn: str) -> dict[str, Any] | None:
        row = self.connection.execute(
            select(users).where(users.c.subject_dn == subject_dn)).first()
        return None if row is None else dict(row._mapping)

    def users(self) -> list[dict[str, Any]]:
        return [dict(row._mapping) for row in self.connection.execute(
            select(users).order_by(users.c.name))]

    def save_user(self, name: str, *, tenants: Sequence[str], admin: bool,
                  password_hash: str | None, subject_dn: str | None) -> None:
        values = {"password_hash": password_hash, "subject_dn": subject_dn,
                  "tenants": list(tenants), "admin": admin}
        if self.user(name) is None:
            self.connection.execute(insert(users).values(name=name, created=_now(), **values))
        else:
            self.connection.execute(sql_update(users).where(users.c.name == name)
                                    .values(**values))

    def delete_user(self, name: str) -> bool:
        return bool(self.connection.execute(delete(users).where(users.c.name == name)).rowcount)

    # ------------------------------------------------------------ marketplace
    def save_endorsement(self, identifier: str, endorser: str, created: datetime,
                         document: dict[str, Any]) -> bool:
        """Keep an endorser's signed entry for an image, unless a newer one is kept
        already; True if stored."""
        table = marketplace_entries
        key = (table.c.identifier == identifier) & (table.c.endorser == endorser)
        kept = self.connection.execute(select(table.c.created).where(key)).scalar()
        if kept is not None:
            if kept.replace(tzinfo=created.tzinfo) >= created:
                return False
            self.connection.execute(delete(table).where(key))
        self.connection.execute(insert(table).values(
            identifier=identifier, endorser=endorser, created=created, deprecated=False,
            document=document))
        self._model_changed()
        return True

    def endorsements(self, identifier: str | None = None) -> list[tuple[dict[str, Any], bool]]:
        """(signed document, deprecated by the site) of every entry, or of one image's."""
        query = select(marketplace_entries.c.document, marketplace_entries.c.deprecated)
        if identifier is not None:
            query = query.where(marketplace_entries.c.identifier == identifier)
        return [(row.document, row.deprecated) for row in self.connection.execute(
            query.order_by(marketplace_entries.c.created.desc()))]

    def deprecate_image(self, identifier: str) -> int:
        changed = self.connection.execute(sql_update(marketplace_entries).where(
            marketplace_entries.c.identifier == identifier).values(deprecated=True)).rowcount
        if changed:
            self._model_changed()
        return changed

    # ------------------------------------------------------------ model
    def model_generation(self) -> int:
        """The number every change of run-time mixins and marketplace entries increases."""
        return self.connection.execute(select(model_generation.c.generation)).scalar() or 0

    def _model_changed(self) -> None:
        table = model_generation
        upsert = _UPSERT[self.connection.dialect.name](table).values(id=1, generation=1)
        self.connection.execute(upsert.on_conflict_do_update(
            index_elements=[table.c.id], set_={"generation": table.c.generation + 1}))

    @property
    def audience(self) -> str | None:
        """Whom this transaction's model is for: None for whoever sees every
        tenant, else the tenant (run-time mixins are offered per tenant)."""
        if self.sees_everything:
            return None
        assert self.scope is not None
        return self.scope.tenant

    def mixins(self) -> tuple[list[Mixin], set[str]]:
        """Run-time mixins this transaction's scope is offered (the site's and its
        tenant's own: tags, saved images), and the type ids of other tenants' (a
        saved image the catalogue also lists is its tenant's alone)."""
        offered, hidden = [], set()
        for row in self.connection.execute(select(categories).order_by(categories.c.created)):
            if self.sees_everything or row.tenant is None or (
                    self.scope is not None and row.tenant == self.scope.tenant):
                offered.append(Mixin(
                    row.scheme, row.term, title=row.title or "", depends=tuple(row.depends),
                    applies=tuple(row.applies), location=row.location, origin=row.origin,
                    info=dict(row.info)))
            else:
                hidden.add(row.type_id)
        return offered, hidden

    def insert_mixin(self, mixin: Mixin, *, tenant: str | None = None) -> None:
        """Keep a run-time mixin, offered to `tenant` (default: this transaction's)."""
        self.connection.execute(insert(categories).values(
            type_id=mixin.type_id, scheme=mixin.scheme, term=mixin.term, title=mixin.title,
            location=mixin.location, depends=list(mixin.depends), applies=list(mixin.applies),
            origin=mixin.origin, info=dict(mixin.info), created=_now(),
            tenant=tenant or self._stamp()[0]))
        self._model_changed()

    def delete_mixin(self, type_id: str) -> None:
        self.remove_mixin_everywhere(type_id)
        self.connection.execute(delete(categories).where(categories.c.type_id == type_id))
        self._model_changed()


class _ReadLog:
    """Each entity as this transaction last read or wrote it (attributes, mixins):
    accounting compares with it on update. Batches of rows read are indexed
    only when a write asks, so that reading large collections costs nothing
    here; the rows and mixin lists kept are not the ones entities were given."""

    def __init__(self) -> None:
        self._batches: list[tuple[Sequence[Any], dict[str, list[str]]]] = []
        self._seen: dict[str, tuple[dict[str, Any], Sequence[str]]] = {}

    def read(self, rows: Sequence[Any], mixins: dict[str, list[str]]) -> None:
        self._batches.append((rows, mixins))

    def wrote(self, entity: Entity) -> None:
        self._index()
        self._seen[entity.id] = (dict(entity.attributes), tuple(entity.mixins))

    def get(self, entity_id: str) -> tuple[dict[str, Any], Sequence[str]] | None:
        self._index()
        return self._seen.get(entity_id)

    def _index(self) -> None:
        # Every batch still here was read after the last write: newer than _seen.
        for rows, mixins in self._batches:
            for row in rows:
                self._seen[row.id] = (row.attributes, mixins[row.id])
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


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

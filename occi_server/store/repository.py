"""The store (SQLite by default, PostgreSQL by URL) and the repository a
transaction yields."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from select import select as select_readable
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError

from occi_server.errors import BackendUnavailable, Conflict
from occi_server.store.records.allocations import AllocationRecords
from occi_server.store.records.base import DEFAULT_TENANT, Scope
from occi_server.store.records.categories import CategoryRecords
from occi_server.store.records.driven import beginning_with_next, sending_waiting, shows
from occi_server.store.records.entities import EntityRecords
from occi_server.store.records.generation import Generations
from occi_server.store.records.hosts import HostRecords
from occi_server.store.records.jobs import JobRecords
from occi_server.store.records.leases import LeaseRecords
from occi_server.store.records.marketplace import EndorsementRecords
from occi_server.store.records.ratelimits import RateRecords
from occi_server.store.records.secrets import SecretRecords
from occi_server.store.records.templates import TemplateRecords
from occi_server.store.records.usage import _ReadLog
from occi_server.store.records.users import UserRecords
from occi_server.store.tables import (
    metadata,
    usage_events,
)
from occi_server.store.watch import GenerationReader
from occi_server.store.writers import Checkpoints, WriterTurns

log = logging.getLogger("occi_server.store")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Store:
    """The database. `transaction(write=…)` yields a Repository bound to one
    transaction, committed on success and rolled back on any exception."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        database = make_url(url).database
        # The SQLite database's file (None: one in memory, or PostgreSQL).
        sqlite_file = Path(database) if self.is_sqlite and database not in (
            None, "", ":memory:") else None
        options: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if sqlite_file is not None:
                # The connection used last is taken first: SQLite drops a
                # connection's whole page cache once another has written, so
                # the one that wrote last (the request's, then its job's)
                # reads on from its own cache where the pool's others would
                # read afresh. (A database in memory has one connection a thread.)
                options["pool_use_lifo"] = True
        self.engine: Engine = create_engine(url, **options)
        # SQLAlchemy's errors, and the driver's own (statements run on the driver)
        driver = self.engine.dialect.loaded_dbapi
        self._unavailable = (OperationalError, driver.OperationalError)
        self._refused = (IntegrityError, driver.IntegrityError)
        self._turns: WriterTurns | None = None
        self._checkpoints: Checkpoints | None = None
        if self.is_sqlite:
            self._configure_sqlite()
            self._turns = WriterTurns(sqlite_file)
            self._checkpoints = Checkpoints()
        else:
            self._configure_postgresql()
        self._generations = GenerationReader(self.engine)

        @event.listens_for(self.engine, "before_execute")
        def _note_change(connection: Connection, statement: Any, *_: Any) -> None:
            if shows(statement):
                connection.info["changed"] = True

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
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # see Checkpoints
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # Writers take the lock up front, so two writers never deadlock
            # upgrading from a shared read lock.
            # (On the driver's connection: SQLAlchemy's execution machinery would
            # cost more than the statement.)
            immediate = connection.info.get("write", False)
            connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if immediate else "BEGIN")

    def _configure_postgresql(self) -> None:
        sending_waiting(self.engine)  # see driven.py

        @event.listens_for(self.engine, "checkout")
        def _unless_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            # A connection idle in the pool has nothing to read: anything there
            # is the server's goodbye (a restart, a backend terminated) or the
            # socket's end. The pool then opens another. One system call, where
            # a ping (pool_pre_ping) was a round trip in every transaction.
            if select_readable([dbapi_connection.fileno()], [], [], 0)[0]:
                raise DisconnectionError("the database closed this connection")

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
                with self._turns.turn() if write and self._turns else nullcontext():
                    connection.info["write"] = write
                    connection.info["changed"] = False
                    if write and self._checkpoints is not None:
                        self._checkpoints.turn_began(connection)
                    with beginning_with_next(connection) if not self.is_sqlite \
                            else nullcontext(), connection.begin():
                        repo = Repository(connection, scope)
                        yield repo
                        repo.settle_totals()
                        if connection.info["changed"]:
                            repo.data_changed()
                if write and self._checkpoints is not None:
                    self._checkpoints.turn_ended(connection)
        except self._unavailable as exc:
            # The database's own words stay in the log: they may name other tenants' rows.
            log.warning("database unavailable: %s", getattr(exc, "orig", exc))
            raise BackendUnavailable("the database is busy or not available; nothing was "
                                     "changed, try again") from None
        except self._refused as exc:
            log.info("refused by a database constraint: %s", getattr(exc, "orig", exc))
            raise Conflict("the request conflicts with something this site already has (an "
                           "id, location or name taken, perhaps meanwhile); nothing was "
                           "changed") from None

    def generations(self) -> Generations:
        """The model and data generations now, read outside any transaction."""
        return self._generations.read()

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


class Repository(EntityRecords, AllocationRecords, JobRecords, UserRecords, EndorsementRecords,
                 CategoryRecords, SecretRecords, TemplateRecords, LeaseRecords, RateRecords,
                 HostRecords):
    """Reads and writes inside one transaction, one part per aggregate
    (store/records/): entities (whose writes accounting records), allocations,
    jobs, users, marketplace entries, run-time categories, site secrets,
    templates, leases, rate-limit counters, hypervisor hosts."""

    def __init__(self, connection: Connection, scope: Scope | None = None) -> None:
        self.connection = connection
        self.scope = scope
        self._read_as = _ReadLog()
        self._due = {}

    def everywhere(self) -> Repository:
        """The same transaction, seeing every tenant's entities (for checks that
        span tenants, such as overlapping networks or taken ids)."""
        everything = Repository(self.connection, None)
        everything._read_as, everything._due = self._read_as, self._due
        return everything


__all__ = ["DEFAULT_TENANT", "Repository", "Scope", "Store"]

"""What every part of a transaction's repository shares: its connection, on
whose behalf it acts (the scope), and what that scope sees."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, func, select

from occi_server.store.records.driven import Driven
from occi_server.store.tables import entities

DEFAULT_TENANT = "default"
_LOCK_TENANT = Driven(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger))))


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


def audience_of(scope: Scope | None) -> str | None:
    """Whom a scope's model is for: None for whoever sees every tenant, else
    the tenant (run-time mixins are offered per tenant)."""
    return None if scope is None or scope.everything else scope.tenant


@dataclass(frozen=True)
class Prepared:
    """A query built once, as every scope runs it: building and compiling a
    statement per request cost more than SQLite answering it. `locked`: the
    same two, locking the rows they read (a write transaction on PostgreSQL)."""

    everything: Any
    scoped: Any
    locked: tuple[Any, Any] | None = None


def prepared(query: Any, *, lockable: bool = False, driven: bool = False) -> Prepared:
    """`query` (with bind parameters for its values) as operators see it and as a
    tenant does (its own entities and shared ones; the tenant bound at run time).
    `lockable`: a write transaction on PostgreSQL locks the rows it reads, so
    that two front ends' requests on one entity take turns (SQLite's write
    transactions take turns already). `driven`: run on the driver (see
    driven.py; a query of one entity, which every write reads first)."""
    made = Driven if driven else _core
    return Prepared(made(query), made(scoped(query)),
                    (made(query.with_for_update(of=entities)),
                     made(scoped(query).with_for_update(of=entities))) if lockable else None)


def scoped(query: Any) -> Any:
    """`query` as a tenant sees it: its own entities and shared ones (the
    tenant bound at run time, as `scope_tenant`)."""
    return query.where((entities.c.tenant == bindparam("scope_tenant")) | entities.c.shared)


def _core(statement: Any) -> Any:
    return statement


class Records:
    connection: Connection
    scope: Scope | None

    @property
    def sees_everything(self) -> bool:
        return self.scope is None or self.scope.everything

    def _visible(self, query: Any) -> Any:
        if self.sees_everything:
            return query
        assert self.scope is not None
        return query.where((entities.c.tenant == self.scope.tenant) | entities.c.shared)

    def _prepared(self, query: Prepared, **values: Any) -> list[Any]:
        """The rows of a query built once (see `prepared`) for this transaction's scope."""
        everything, scoped = query.everything, query.scoped
        if query.locked is not None and self.connection.info.get("write") \
                and self.connection.dialect.name == "postgresql":
            everything, scoped = query.locked
        if not self.sees_everything:
            assert self.scope is not None
            everything, values = scoped, {**values, "scope_tenant": self.scope.tenant}
        if isinstance(everything, Driven):
            return everything.rows(self.connection, values)
        return self.connection.execute(everything, values).all()

    def _stamp(self) -> tuple[str, str]:
        """(tenant, owner) of what this transaction creates."""
        if self.scope is None:
            return DEFAULT_TENANT, "occi-server"
        return self.scope.tenant, self.scope.owner

    def lock_tenants(self, tenants: list[str]) -> bool:
        """Serialize these tenants' quota checks until the transaction ends,
        taken in one order (no two transactions wait for each other crosswise).
        False where writers are serialized already (SQLite: what this write
        transaction read stands until it ends)."""
        if self.connection.dialect.name != "postgresql":
            return False
        for tenant in sorted(tenants):  # taken before the statement after them reads
            _LOCK_TENANT.run_later(self.connection,
                                   {"key": zlib.crc32(f"tenant:{tenant}".encode())})
        return True

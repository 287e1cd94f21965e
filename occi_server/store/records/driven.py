"""Statements run on the driver: the few that every create, change and delete
runs (its writes, the generations, the one entity it reads first), compiled
by SQLAlchemy once per database and set of values, then run on the driver's
cursor with their values converted by the columns' own types both ways (as
SQLAlchemy converts them). Executing a built statement the usual way (its
cache key, the compiled cache, processing the values, setting up the result)
took reading one entity's row 32 µs against 10 this way (4 for the driver
alone), all of it with the store's write lock held in a write transaction.
The driver's errors are its own (Store.transaction answers them as it does
SQLAlchemy's)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase

from occi_server.store.tables import data_generation, leases, rate_hits

# The service's bookkeeping, which no answer shows: writing it changes nothing.
_BOOKKEEPING = frozenset(table.name for table in (leases, rate_hits, data_generation))

Values = Mapping[str, Any]
_NONE: Values = MappingProxyType({})
_REQUIRED = object()  # a bound value the statement does not carry


def shows(statement: Any) -> bool:
    """Whether a statement changes what the API shows: any insert, update or
    delete but of the service's bookkeeping."""
    return isinstance(statement, UpdateBase) and statement.table.name not in _BOOKKEEPING


class Driven:
    """A statement run on the driver (no expanding IN lists)."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._shows = shows(statement)
        # (database, names of the values given) -> the statement compiled for them
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def run(self, connection: Connection, values: Values | Sequence[Values] = _NONE) -> int:
        """Run with one set of values, or once per set of a list (all naming the
        same); how many rows it changed."""
        many = isinstance(values, Sequence)
        first = values[0] if many else values
        compiled = self._for(connection, first)
        if self._shows:
            connection.info["changed"] = True  # see Store: the data generation moves on
        cursor = _cursor(connection)
        if many:
            cursor.executemany(compiled.sql, [compiled.parameters(one) for one in values])
        else:
            cursor.execute(compiled.sql, compiled.parameters(first))
        return int(cursor.rowcount)

    def rows(self, connection: Connection, values: Values = _NONE) -> list[Any]:
        """What a select reads: named tuples of its columns' values, each
        converted by the column's type (as SQLAlchemy's rows have them)."""
        compiled = self._for(connection, values)
        cursor = _cursor(connection)
        cursor.execute(compiled.sql, compiled.parameters(values))
        return [compiled.row(raw) for raw in cursor.fetchall()]

    def _for(self, connection: Connection, values: Values) -> _Compiled:
        key = (connection.dialect.name, tuple(values))
        return self._compiled.get(key) or self._compile(connection.dialect, key)

    def _compile(self, dialect: Dialect, key: tuple[str, tuple[str, ...]]) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(key[1]))
        # Each bound value: its name, the value the statement carries (or that
        # one must be given), and its type's conversion for this database.
        binds = [(name, _REQUIRED if bind.required else bind.value,
                  bind.type.dialect_impl(dialect).bind_processor(dialect))
                 for name, bind in ((name, compiled.binds[name]) for name in
                                    (compiled.positiontup if compiled.positional
                                     else compiled.binds))]

        def converted(values: Values) -> list[Any]:
            found = []
            for name, fixed, convert in binds:
                value = values[name] if fixed is _REQUIRED else values.get(name, fixed)
                found.append(value if convert is None else convert(value))
            return found

        if compiled.positional:
            def parameters(values: Values) -> Any:
                return tuple(converted(values))
        else:
            names = [name for name, _, _ in binds]

            def parameters(values: Values) -> Any:
                return dict(zip(names, converted(values), strict=True))
        made = _Compiled(compiled.string, parameters, _row_maker(self.statement, dialect))
        self._compiled[key] = made
        return made


def _cursor(connection: Connection) -> Any:
    """A cursor of the connection's driver, inside the transaction SQLAlchemy began."""
    return connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    parameters: Callable[[Values], Any]  # the driver's parameters for a set of values
    row: Callable[[Sequence[Any]], Any]  # a row the driver read, as a select's row


def _row_maker(statement: Any, dialect: Dialect) -> Callable[[Sequence[Any]], Any]:
    columns = list(getattr(statement, "selected_columns", ()))
    row = namedtuple("Row", [str(column.key) for column in columns],  # type: ignore[misc]
                     rename=True)
    converts = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns]
    if not any(converts):
        return row._make
    return lambda raw: row._make([value if convert is None else convert(value)
                                  for convert, value in zip(converts, raw, strict=True)])

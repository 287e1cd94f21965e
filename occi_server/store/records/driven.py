"""Statements run on the driver: the few that every create, change and delete
runs (its writes, the generations, the one entity it reads first), compiled
by SQLAlchemy once per database and set of values, then run on the driver's
cursor with their values converted by the columns' own types both ways (as
SQLAlchemy converts them). Executing a built statement the usual way (its
cache key, the compiled cache, processing the values, setting up the result)
took reading one entity's row 32 µs against 10 this way (4 for the driver
alone), all of it with the store's write lock held in a write transaction.
The driver's errors are its own (Store.transaction answers them as it does
SQLAlchemy's).

On PostgreSQL every statement is a round trip to the server, and a create
made fifteen in its request and seven in its job (now five and two), each
costing both sides more than the statement itself. Writes whose
changed-row count nothing reads (`run_later`: accounting's events, an
entity's mixins, jobs, totals, the generations, a delete's deletes, a
tenant's lock) wait on the connection and go with the transaction's next
statement in one pipeline, the last of them with the COMMIT, and the
transaction's BEGIN waits likewise for its first statement
(`beginning_with_next`). The server runs them in the order given, each as it
would alone (a lock is held before the next statement reads); a failing one
fails the transaction as it would have at once."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, event
from sqlalchemy.sql.dml import UpdateBase

from occi_server.store.tables import data_generation, leases, rate_hits

# The service's bookkeeping, which no answer shows: writing it changes nothing.
_BOOKKEEPING = frozenset(table.name for table in (leases, rate_hits, data_generation))

Values = Mapping[str, Any]
_NONE: Values = MappingProxyType({})
_REQUIRED = object()  # a bound value the statement does not carry
_WAITING = "driven_waiting"  # connection.info: statements sent with the next one
_CURSOR = "driven_cursor"  # connection.info: the driver's cursor statements run on
_BEGIN = ("BEGIN", None, False)  # a transaction's own: no parameters, never prepared


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
        sql, parameters, many = self._prepared(connection, values)
        cursor = _cursor(connection)
        with _together(connection, cursor):
            _execute(cursor, sql, parameters, many)
        return int(cursor.rowcount)

    def run_later(self, connection: Connection,
                  values: Values | Sequence[Values] = _NONE) -> None:
        """Run where nothing reads how many rows it changed: on PostgreSQL with
        the transaction's next statement (see above), elsewhere at once."""
        if connection.dialect.name != "postgresql":
            self.run(connection, values)
            return
        connection.info.setdefault(_WAITING, []).append(self._prepared(connection, values))

    def rows(self, connection: Connection, values: Values = _NONE) -> list[Any]:
        """What a select reads: named tuples of its columns' values, each
        converted by the column's type (as SQLAlchemy's rows have them)."""
        compiled = self._for(connection, values)
        cursor = _cursor(connection)
        with _together(connection, cursor):
            cursor.execute(compiled.sql, compiled.parameters(values))
        return [compiled.row(raw) for raw in cursor.fetchall()]

    def _prepared(self, connection: Connection, values: Values | Sequence[Values]
                  ) -> tuple[str, Any, bool]:
        """The statement's SQL for the driver, its parameters, whether many sets."""
        many = isinstance(values, Sequence)
        compiled = self._for(connection, values[0] if many else values)
        if self._shows:
            connection.info["changed"] = True  # see Store: the data generation moves on
        parameters = [compiled.parameters(one) for one in values] if many \
            else compiled.parameters(values)
        return compiled.sql, parameters, many

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
    """The cursor of the connection's driver statements run on (one kept per
    connection: making one took a tenth of a PostgreSQL statement's time in a
    profile of creates), inside the transaction SQLAlchemy began."""
    raw = connection.connection.dbapi_connection
    cursor = connection.info.get(_CURSOR)
    if cursor is None or cursor.connection is not raw:
        cursor = connection.info[_CURSOR] = raw.cursor()  # type: ignore[union-attr]
    return cursor


def _execute(cursor: Any, sql: str, parameters: Any, many: bool) -> None:
    if many:
        cursor.executemany(sql, parameters)
    else:
        cursor.execute(sql, parameters)


@contextmanager
def _together(connection: Connection, cursor: Any) -> Iterator[None]:
    """The statements waiting and the block's sent in one pipeline: their
    results all come back in one round trip, as the block ends."""
    waiting = connection.info.pop(_WAITING, None)
    if not waiting:
        yield
        return
    with connection.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
        for sql, parameters, many in waiting:
            if (sql, parameters, many) == _BEGIN:
                cursor.execute(sql, prepare=False)
            else:
                _execute(cursor, sql, parameters, many)
        yield


@contextmanager
def beginning_with_next(connection: Connection) -> Iterator[None]:
    """A PostgreSQL transaction whose BEGIN goes with its first statement:
    psycopg sends its own alone (a round trip of its own, even in a
    pipeline), so the driver is told not to (autocommit) and this one waits.
    COMMIT and ROLLBACK are psycopg's, sent as the server reports a
    transaction open. The driver is itself again after the block, or the
    connection is not used again."""
    raw = connection.connection.dbapi_connection
    raw.autocommit = True  # type: ignore[union-attr]
    connection.info[_WAITING] = [_BEGIN]
    try:
        yield
    finally:
        connection.info.pop(_WAITING, None)
        if raw.info.transaction_status.name == "IDLE":  # type: ignore[union-attr]
            raw.autocommit = False  # type: ignore[union-attr]
        else:  # broken, or its end was not seen
            connection.invalidate()


def send_waiting(connection: Connection) -> None:
    """Send the statements waiting on the connection now (before one whose
    failure is answered where it is run)."""
    if connection.info.get(_WAITING):
        with _together(connection, _cursor(connection)):
            pass


def sending_waiting(engine: Engine) -> None:
    """Have `engine`'s (PostgreSQL) connections send the statements waiting
    (`run_later`) before any SQLAlchemy runs, and with the COMMIT; a
    rollback drops them."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before_others(connection: Connection, *_: Any) -> None:
        send_waiting(connection)

    @event.listens_for(engine, "commit")
    def _with_commit(connection: Connection) -> None:
        # Committed here, with the writes waiting; SQLAlchemy's COMMIT then
        # finds no transaction open and sends nothing. A BEGIN alone: no
        # statement ran, nothing to send.
        waiting = connection.info.get(_WAITING)
        if waiting == [_BEGIN]:
            connection.info.pop(_WAITING)
        elif waiting:
            cursor = _cursor(connection)
            with _together(connection, cursor):
                cursor.execute("COMMIT", prepare=False)

    @event.listens_for(engine, "rollback")
    def _dropped(connection: Connection) -> None:
        connection.info.pop(_WAITING, None)


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

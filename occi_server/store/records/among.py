"""A column among many values bound as one: a JSON array the database
unpacks itself. SQLAlchemy's expanding IN binds one value per member and
renders the statement anew for each length; a listing of 10 000 entities
read its mixins and links in forty statements of 500 (the databases' limits
on bound values), whose expansion took a tenth of its time. One bound array
has no length limit, so a statement compiled once (see driven.py) reads
them all."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import NullType


class _Among(ColumnElement[bool]):
    """`column` is one of the strings of the JSON array bound as `name`."""

    # No boolean type: SQLite would compare it with 1 (`IN (...) = 1`), which no index serves.
    type = NullType()
    inherit_cache = False  # compiled once per database by Driven, never cached by key

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.array = bindparam(name, type_=String)


def among(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """`column IN` the values given as `name` (bound with `members`)."""
    return _Among(column, name)


def members(values: Iterable[str]) -> str:
    """Values for `among`'s bound array."""
    return json.dumps(list(values))


@compiles(_Among, "sqlite")
def _sqlite(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    unpacked = select(literal_column("value")).select_from(func.json_each(element.array))
    return compiler.process(element.column.in_(unpacked), **kw)


@compiles(_Among, "postgresql")
def _postgresql(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    unpacked = select(func.json_array_elements_text(cast(element.array, JSON)))
    return compiler.process(element.column.in_(unpacked), **kw)


@compiles(_Among)
def _elsewhere(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"no array of values on {compiler.dialect.name}")

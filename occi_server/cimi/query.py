"""A collection's query parameters (DSP0263, "Collection queries"):
`$filter`, `$orderby`, `$first`/`$last`, `$select`, `$expand`. `count` is
the number of members the filter selects, before `$first`/`$last`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from occi_server.cimi.filters import Node, matches, parse
from occi_server.errors import BadRequest

Resource = dict[str, Any]
# What every selection keeps: what the resource is and where.
ALWAYS = ("resourceURI", "id")


@dataclass
class Query:
    filters: list[Node] = field(default_factory=list)  # all must hold
    order: list[tuple[str, bool]] = field(default_factory=list)  # (attribute, descending)
    first: int | None = None
    last: int | None = None
    select: list[str] | None = None
    expand: set[str] = field(default_factory=set)  # "*": every reference

    def expands(self, name: str) -> bool:
        return "*" in self.expand or name in self.expand


def read(arguments: Mapping[str, list[str]]) -> Query:
    """The query of a request's parameters (each may come more than once:
    filters then must all hold, the other lists add up)."""
    query = Query()
    for text in arguments.get("$filter", []):
        query.filters.append(parse(text))
    for text in arguments.get("$orderby", []):
        for item in _names(text, "$orderby"):
            name, _, direction = item.partition(":")
            if direction not in ("", "asc", "desc"):
                raise BadRequest(f"$orderby: {item!r} must be NAME, NAME:asc or NAME:desc")
            query.order.append((name, direction == "desc"))
    query.first = _position(arguments, "$first")
    query.last = _position(arguments, "$last")
    for text in arguments.get("$select", []):
        query.select = [*(query.select or []), *_names(text, "$select")]
    for text in arguments.get("$expand", []):
        query.expand.update(_names(text, "$expand"))
    return query


def _names(text: str, parameter: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BadRequest(f"{parameter} names nothing")
    return names


def _position(arguments: Mapping[str, list[str]], name: str) -> int | None:
    values = arguments.get(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} is given more than once")
    text = values[0]
    if not text.isdigit() or len(text) > 12:
        raise BadRequest(f"{name} must be a whole number, not {text!r}")
    return int(text)


def applied(query: Query, members: list[Resource]) -> tuple[int, list[Resource]]:
    """How many members the filters select, and those `$orderby`, `$first` and
    `$last` leave, in order."""
    selected = [member for member in members
                if all(matches(node, member) for node in query.filters)]
    for name, descending in reversed(query.order):  # the first name sorts last
        present = [m for m in selected if _sortable(m.get(name)) is not None]
        absent = [m for m in selected if _sortable(m.get(name)) is None]
        present.sort(key=lambda m, name=name: _sortable(m[name]), reverse=descending)
        selected = present + absent  # members without the attribute come last
    count = len(selected)
    start = (query.first or 1) - 1
    end = count if query.last is None else query.last
    return count, selected[start:end] if end > start else []


def _sortable(value: Any) -> tuple[int, Any] | None:
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return None


def selection(query: Query, resource: Resource) -> Resource:
    """The resource with the attributes `$select` names (all without it)."""
    if query.select is None or "*" in query.select:
        return resource
    return {name: value for name, value in resource.items()
            if name in ALWAYS or name in query.select}


def expanded(query: Query, resource: Resource,
             expansions: Mapping[str, Callable[[], Any]]) -> Resource:
    """The resource with the references `$expand` names replaced by what they
    refer to (where `expansions` knows how to read it)."""
    for name, read_it in expansions.items():
        if query.expands(name) and name in resource:
            resource = {**resource, name: read_it()}
    return resource

"""CIMI's $filter: what the server parses from a filter's text selects
exactly what a plain evaluator of the same expression, written here from
DSP0263's grammar, selects; bad filters are refused with where they go wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from occi_server.cimi.filters import matches, parse, quoted
from occi_server.errors import BadRequest

NAMES = ["name", "state", "cpu", "memory", "created", "bootable"]
PROPERTY_KEYS = ["zone", "owner"]
WORDS = ["vm", "web", "STARTED", "STOPPED", "it's", 'say "hi"', ""]
DATES = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 15, 31)]


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return quoted(value)


values = st.one_of(st.booleans(), st.integers(0, 8), st.sampled_from(WORDS),
                   st.sampled_from(DATES))
operators = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


@st.composite
def comparisons(draw) -> tuple[str, tuple]:
    """A comparison's text and the expression it stands for."""
    if draw(st.booleans()):
        key, operator, value = draw(st.sampled_from(PROPERTY_KEYS)), draw(operators), \
            draw(st.sampled_from(WORDS))
        return f"property[{quoted(key)}]{operator}{quoted(value)}", ("property", key, operator,
                                                                     value)
    name, operator, value = draw(st.sampled_from(NAMES)), draw(operators), draw(values)
    if draw(st.booleans()):  # value first: the operator reads the other way round
        return f"{literal(value)} {operator} {name}", ("compare", name, FLIP[operator], value)
    return f"{name}{operator}{literal(value)}", ("compare", name, operator, value)


FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def expressions(depth: int = 3):
    if depth == 0:
        return comparisons()
    inner = expressions(depth - 1)

    @st.composite
    def joined(draw) -> tuple[str, tuple]:
        parts = draw(st.lists(inner, min_size=1, max_size=3))
        word = draw(st.sampled_from(["and", "or"]))
        text = f" {word} ".join(f"({t})" for t, _ in parts)
        return text, (word, [e for _, e in parts])
    return st.one_of(comparisons(), joined())


def evaluate(expression: tuple, resource: dict[str, Any]) -> bool:
    """DSP0263's meaning, plainly: a missing or differently typed value
    satisfies no comparison; dates compare as instants."""
    head = expression[0]
    if head == "and":
        return all(evaluate(e, resource) for e in expression[1])
    if head == "or":
        return any(evaluate(e, resource) for e in expression[1])
    if head == "property":
        _, key, operator, value = expression
        actual = resource.get("properties", {}).get(key)
    else:
        _, name, operator, value = expression
        actual = resource.get(name)
    if actual is None:
        return False
    if isinstance(value, datetime):
        if actual not in [d.isoformat() for d in DATES]:
            return False  # not a date
        actual = datetime.fromisoformat(actual)
    elif isinstance(value, bool) != isinstance(actual, bool) or \
            type(value) is not type(actual):
        return False
    return {"=": actual == value, "!=": actual != value, "<": actual < value,
            "<=": actual <= value, ">": actual > value, ">=": actual >= value}[operator]


resources = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(WORDS), "state": st.sampled_from(WORDS),
    "cpu": st.integers(0, 8), "memory": st.integers(0, 8), "bootable": st.booleans(),
    "created": st.sampled_from(DATES).map(lambda d: d.isoformat()),
    "properties": st.dictionaries(st.sampled_from(PROPERTY_KEYS), st.sampled_from(WORDS)),
})


@settings(max_examples=400, deadline=None)
@given(expression=expressions(), resource=resources)
def test_the_server_selects_what_the_expression_means(expression, resource) -> None:
    text, meaning = expression
    assert matches(parse(text), resource) == evaluate(meaning, resource), text


def test_precedence_and_binds_tighter_than_or() -> None:
    node = parse("cpu=1 or cpu=2 and name='x'")
    assert matches(node, {"cpu": 1, "name": "y"})
    assert not matches(node, {"cpu": 2, "name": "y"})
    assert matches(node, {"cpu": 2, "name": "x"})


def test_quotes_of_both_kinds_and_escapes() -> None:
    assert matches(parse('name="say \\"hi\\""'), {"name": 'say "hi"'})
    assert matches(parse("name='it\\'s'"), {"name": "it's"})


@pytest.mark.parametrize("text, where", [
    ("name=", "expected a value"),
    ("name='x", "unexpected"),
    ("=1", "expected a value"),
    ("cpu>1 and", "expected a value"),
    ("(cpu>1", "expected ')'"),
    ("cpu>1)", "expected end of the filter"),
    ("property[zone]='a'", "expected a quoted property name"),
    ("1=2", "expected an attribute name"),
    ("name='a' name='b'", "expected end of the filter"),
    ("created<2026-13-45", "expected a valid date"),
    ("(" * 40 + "cpu=1" + ")" * 40, "nest deeper"),
])
def test_bad_filters_say_where(text: str, where: str) -> None:
    with pytest.raises(BadRequest, match="filter") as refused:
        parse(text)
    assert where in refused.value.message

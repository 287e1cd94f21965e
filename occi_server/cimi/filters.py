"""CIMI's `$filter` (DSP0263, "Filtering Collections"): parsed into a tree,
evaluated against resources as the service renders them.

    Filter   ::= AndExpr ( 'or' AndExpr )*
    AndExpr  ::= Comp ( 'and' Comp )*
    Comp     ::= Attribute Op Value | Value Op Attribute
               | 'property[' String ']' Op String | '(' Filter ')'
    Op       ::= '<' | '<=' | '=' | '>=' | '>' | '!='
    Value    ::= Integer | Date | String | 'true' | 'false'

Strings are in single or double quotes (a quote inside doubled by a
backslash). An attribute a resource does not have satisfies no comparison."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from occi_server.errors import BadRequest

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
# A comparison written value-first reads the other way round.
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
MAX_LENGTH = 4096

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<date>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<int>\d+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|<|>|=)
  | (?P<property>property\[)
  | (?P<punct>[()\]])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)


@dataclass(frozen=True)
class Comparison:
    attribute: str
    operator: str
    value: Any
    property: bool = False  # `attribute` is a key of the resource's properties


@dataclass(frozen=True)
class Both:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Either:
    parts: tuple[Node, ...]


Node = Comparison | Both | Either


def parse(text: str) -> Node:
    """The tree of a `$filter` value; BadRequest saying where it goes wrong."""
    if len(text) > MAX_LENGTH:
        raise BadRequest(f"$filter is longer than {MAX_LENGTH} characters")
    tokens = _tokens(text)
    parser = _Parser(tokens, text)
    node = parser.either()
    if parser.position < len(tokens):
        parser.fail("end of the filter")
    return node


def matches(node: Node, resource: Mapping[str, Any]) -> bool:
    if isinstance(node, Either):
        return any(matches(part, resource) for part in node.parts)
    if isinstance(node, Both):
        return all(matches(part, resource) for part in node.parts)
    holder = resource.get("properties") or {} if node.property else resource
    if node.attribute not in holder:
        return False
    actual = _comparable(holder[node.attribute], node.value)
    if actual is None:
        return False
    try:
        return OPERATORS[node.operator](actual, node.value)
    except TypeError:
        return False


def _comparable(actual: Any, value: Any) -> Any:
    """The resource's value in the type of the filter's (None: not comparable)."""
    if isinstance(value, bool):
        return actual if isinstance(actual, bool) else None
    if isinstance(value, int):
        return actual if isinstance(actual, int | float) and not isinstance(actual, bool) \
            else None
    if isinstance(value, datetime):
        try:
            return _date(str(actual))
        except ValueError:
            return None
    return actual if isinstance(actual, str) else None


def _date(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.now().astimezone().tzinfo)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise BadRequest(f"$filter: unexpected {text[position]!r} at character "
                             f"{position + 1} of {text!r}")
        if found.lastgroup != "space":
            tokens.append((str(found.lastgroup), found.group(), position))
        position = found.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str, int]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0
        self.depth = 0

    def fail(self, expected: str) -> NoReturn:
        if self.position < len(self.tokens):
            _, found, at = self.tokens[self.position]
            where = f"{found!r} at character {at + 1}"
        else:
            where = "the end"
        raise BadRequest(f"$filter: expected {expected}, found {where} in {self.text!r}")

    def peek(self) -> tuple[str, str]:
        if self.position < len(self.tokens):
            kind, value, _ = self.tokens[self.position]
            return kind, value
        return "", ""

    def take(self, kind: str, expected: str, value: str | None = None) -> str:
        found_kind, found = self.peek()
        if found_kind != kind or (value is not None and found != value):
            self.fail(expected)
        self.position += 1
        return found

    def either(self) -> Node:
        parts = [self.both()]
        while self.peek() == ("word", "or"):
            self.position += 1
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else Either(tuple(parts))

    def both(self) -> Node:
        parts = [self.comparison()]
        while self.peek() == ("word", "and"):
            self.position += 1
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else Both(tuple(parts))

    def comparison(self) -> Node:
        kind, value = self.peek()
        if kind == "punct" and value == "(":
            self.depth += 1
            if self.depth > 32:
                raise BadRequest("$filter: parentheses nest deeper than 32")
            self.position += 1
            inner = self.either()
            self.take("punct", "')'", ")")
            self.depth -= 1
            return inner
        if kind == "property":
            self.position += 1
            key = _unquoted(self.take("string", "a quoted property name"))
            self.take("punct", "']'", "]")
            operator = self.take("op", "a comparison operator")
            return Comparison(key, operator, _unquoted(self.take("string", "a quoted string")),
                              property=True)
        if kind == "word" and value not in ("true", "false", "and", "or"):
            self.position += 1
            operator = self.take("op", "a comparison operator")
            return Comparison(value, operator, self.value())
        literal = self.value()
        operator = _FLIPPED[self.take("op", "a comparison operator")]
        attribute = self.take("word", "an attribute name")
        if attribute in ("true", "false", "and", "or"):
            self.position -= 1
            self.fail("an attribute name")
        return Comparison(attribute, operator, literal)

    def value(self) -> Any:
        kind, text = self.peek()
        if kind == "int":
            self.position += 1
            return int(text)
        if kind == "date":
            self.position += 1
            try:
                return _date(text)
            except ValueError:
                self.position -= 1
                self.fail("a valid date")
        if kind == "string":
            self.position += 1
            return _unquoted(text)
        if kind == "word" and text in ("true", "false"):
            self.position += 1
            return text == "true"
        self.fail("a value (integer, date, quoted string, true or false)")


def _unquoted(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def quoted(text: str) -> str:
    """`text` as a filter's string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

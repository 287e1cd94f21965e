"""The OCCI text rendering's grammar (GFD.229 §4): quote-aware splitting,
attribute values, and the Category, Link and X-OCCI-Attribute values.

Lenient in what it reads (any parameter order, single or double quotes,
optional spaces and trailing ';', case-insensitive names); exact in what it
writes (ABNF parameter order, double quotes, numbers without exponents)."""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from typing import Any

from occi_server.core import Attribute, Category, Kind, Mixin, Model
from occi_server.core.specs import CategorySpec, LinkSpec
from occi_server.errors import BadRequest

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")
_ATTRIBUTE_DEF = re.compile(r"([^\s{}]+)(?:\{([^}]*)\})?")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


# Where a quoted string that began just before ends (after its closing quote);
# a backslash escapes the character after it.
_QUOTED_TO_END = {quote: re.compile(rf"(?:[^{quote}\\]|\\.)*{quote}", re.DOTALL)
                  for quote in "\"'"}


def split_outside_quotes(value: str, separator: str) -> list[str]:
    """Split on `separator` except inside quoted strings (double quotes, or
    single ones opening a value after '=') and a <URI> opening a part. One
    pass, in time linear in the value's length: the text between the
    characters that matter is skipped by a regular expression."""
    parts: list[str] = []
    start = position = 0  # of the part, and of what is still to read
    matters = _matters(separator)
    while (found := matters.search(value, position)) is not None:
        char, at = found.group(), found.start()
        if char == separator:
            parts.append(value[start:at])
            start = position = at + 1
        elif char == '"' or (char == "'" and _last_before(value, start, at) == "="):
            closed = _QUOTED_TO_END[char].match(value, at + 1)
            if closed is None:
                raise BadRequest(f"unterminated quoted string in: {value[:200]}")
            position = closed.end()
        elif char == "<" and not _last_before(value, start, at):
            closing = value.find(">", at + 1)
            if closing < 0:
                raise BadRequest(f"unterminated <URI> in: {value[:200]}")
            position = closing + 1
        else:
            position = at + 1
    parts.append(value[start:])
    return [part.strip() for part in parts if part.strip()]


@functools.cache
def _matters(separator: str) -> re.Pattern[str]:
    """The characters splitting looks at."""
    return re.compile(f"[{re.escape(separator)}\"'<]")


def _last_before(value: str, start: int, at: int) -> str:
    """The last character before `at`, back to `start`, that is not white
    space ("" if none)."""
    index = at - 1
    while index >= start and value[index].isspace():
        index -= 1
    return value[index] if index >= start else ""


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if following == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[index + 2:index + 6]):
                out.append(chr(int(text[index + 2:index + 6], 16)))
                index += 6
                continue
            out.append(_ESCAPES.get(following, following))
            index += 2
            continue
        out.append(char)
        index += 1
    # Re-join UTF-16 surrogate pairs written by quote(ascii_only=True).
    try:
        return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        raise BadRequest("a \\u escape names a lone UTF-16 surrogate (U+D800 to U+DFFF), "
                         "which is no character") from None


def quote(text: str, *, ascii_only: bool = False) -> str:
    """A double-quoted string; newlines are escaped so a value stays on one line,
    and any other control character as \\uXXXX (none ever reaches a header raw)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"')
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    escaped = _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", escaped)
    if ascii_only and not escaped.isascii():
        escaped = "".join(
            char if char.isascii() else "".join(
                f"\\u{unit:04x}" for unit in _utf16_units(char))
            for char in escaped
        )
    return f'"{escaped}"'


def _utf16_units(char: str) -> list[int]:
    data = char.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]


def parse_value(raw: str) -> Any:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return unescape(raw[1:-1])
    if raw in ("true", "false"):
        return raw == "true"
    if _INT.fullmatch(raw):
        try:
            return int(raw)
        except ValueError:  # more digits than Python converts (4300)
            raise BadRequest(f"the number {raw[:20]}… has too many digits") from None
    if _FLOAT.fullmatch(raw):
        return float(raw)
    if not raw:
        raise BadRequest("an attribute value is missing after '='")
    return raw


def format_value(value: Any, *, ascii_only: bool = False) -> str:
    """A value in the text rendering: quoted strings, bare non-negative numbers
    (never in exponent notation) and booleans; lists and objects as quoted JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, float) and value >= 0:
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
        return text if "." in text else text + ".0"
    if isinstance(value, int | float):
        return quote(repr(value))  # the ABNF number has no sign
    if isinstance(value, list | dict):
        return quote(json.dumps(value, separators=(",", ":")), ascii_only=ascii_only)
    return quote(str(value), ascii_only=ascii_only)


def parse_params(segments: list[str], context: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for segment in segments:
        name, equals, raw = segment.partition("=")
        name = name.strip()
        if not equals or not name:
            raise BadRequest(f"expected name=value, got {segment!r} in {context}")
        params[name] = parse_value(raw)
    return params


# ---------------------------------------------------------------- Category
def parse_category(value: str) -> CategorySpec:
    segments = split_outside_quotes(value, ";")
    if not segments:
        raise BadRequest("empty Category value")
    term = segments[0]
    if not _TERM.fullmatch(term):
        raise BadRequest(f"Category {value!r}: {term!r} is not a valid term")
    params = {k.lower(): v for k, v in parse_params(segments[1:], "Category").items()}
    scheme = params.get("scheme")
    if not isinstance(scheme, str) or not scheme:
        raise BadRequest(f"Category {term!r} has no scheme")
    category_class = params.get("class")
    if category_class is not None and category_class not in ("kind", "mixin", "action"):
        raise BadRequest(f"Category {term!r}: class must be kind, mixin or action")
    return CategorySpec(
        term=term,
        scheme=scheme,
        category_class=category_class,
        title=_text_param(params, "title"),
        rel=str(params.get("rel", "")).split(),
        location=_text_param(params, "location"),
        attributes=[m.group(1) for m in _ATTRIBUTE_DEF.finditer(str(params.get("attributes", "")))],
        actions=str(params.get("actions", "")).split(),
    )


def _text_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    return None if value is None else str(value)


def render_category(category: Category, model: Model, *, full: bool,
                    ascii_only: bool = False) -> str:
    """A Category value with parameters in ABNF order; `full` adds the
    attribute and action lists (query interface)."""
    parts = [category.term, f'scheme="{category.scheme}"',
             f'class="{category.category_class}"']
    if category.title:
        parts.append("title=" + quote(category.title, ascii_only=ascii_only))
    if isinstance(category, Kind) and category.parent:
        parts.append(f'rel="{category.parent}"')
    if isinstance(category, Mixin) and category.depends:
        parts.append(f'rel="{category.depends[0]}"')  # 1.2: only the first depends
    location = getattr(category, "location", None)
    if location:
        parts.append(f'location="{location}"')
    if full:
        if isinstance(category, Kind):
            attributes = model.kind_attributes(category)
        elif isinstance(category, Mixin):
            attributes = model.mixin_attributes(category)
        else:
            attributes = list(category.attributes)
        if attributes:
            parts.append('attributes="' + " ".join(map(_attribute_def, attributes)) + '"')
        actions = getattr(category, "actions", ())
        if actions:
            parts.append('actions="' + " ".join(a.type_id for a in actions) + '"')
    return "; ".join(parts)


def _attribute_def(attribute: Attribute) -> str:
    props = [p for p, on in (("immutable", not attribute.mutable),
                             ("required", attribute.required)) if on]
    return attribute.name + ("{" + " ".join(props) + "}" if props else "")


# ---------------------------------------------------------------- Attribute
def parse_attribute(value: str) -> tuple[str, Any]:
    name, equals, raw = value.partition("=")
    name = name.strip()
    if not equals or not _ATTRIBUTE_NAME.fullmatch(name):
        raise BadRequest(f"X-OCCI-Attribute {value!r} is not name=value")
    return name, parse_value(raw)


def render_attribute(name: str, value: Any, *, ascii_only: bool = False) -> str:
    return f"{name}={format_value(value, ascii_only=ascii_only)}"


# ---------------------------------------------------------------- Link
def parse_link(value: str) -> LinkSpec:
    """A Link value: `<target>; rel="…"; self="…"; category="kind mixins…"; attrs…`."""
    segments = split_outside_quotes(value, ";")
    if not segments or not (segments[0].startswith("<") and segments[0].endswith(">")):
        raise BadRequest(f"Link {value!r} does not start with <target>")
    target = segments[0][1:-1].strip()
    spec = LinkSpec(target=target or None)
    for segment in segments[1:]:
        name, equals, raw = segment.partition("=")
        name = name.strip()
        if not equals:
            raise BadRequest(f"expected name=value, got {segment!r} in Link {target!r}")
        parsed = parse_value(raw)
        lowered = name.lower()
        if lowered == "rel":
            rel = str(parsed).split()
            spec.target_kind = rel[0] if rel else None
        elif lowered == "self":
            spec.self_location = str(parsed)
        elif lowered == "category":
            # Some clients repeat category= (kind, then each mixin).
            ids = str(parsed).split()
            if spec.kind is None and ids:
                spec.kind, ids = ids[0], ids[1:]
            spec.mixins.extend(ids)
        else:
            spec.attributes[name] = parsed
    return spec

"""text/plain (data in the body) and text/occi (data in the headers), GFD.229."""

from __future__ import annotations

import contextlib
import re
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from occi_server.core import Category, Entity, Model
from occi_server.core.model import RESOURCE
from occi_server.core.specs import ActionSpec, CategorySpec, EntitySpec, LinkSpec
from occi_server.errors import BadRequest, OCCIError
from occi_server.rendering.base import (
    LocationLines,
    Parser,
    RenderContext,
    Rendered,
    Renderer,
    RequestData,
    split_type_id,
)
from occi_server.rendering.ordering import ordered_attributes
from occi_server.rendering.textcodec import (
    parse_attribute,
    parse_category,
    parse_link,
    quote,
    render_attribute,
    render_category,
    split_outside_quotes,
)

# Header (or body line) names and the aliases older clients use.
_NAMES = {
    "category": "category", "x-occi-category": "category",
    "link": "link", "x-occi-link": "link",
    "x-occi-attribute": "attribute",
    "x-occi-location": "location", "location": "location",
}
_LINE_BREAK = re.compile(r"\r\n|\n\r|\n|\r")


@dataclass
class TextMessage:
    categories: list[CategorySpec] = field(default_factory=list)
    links: list[LinkSpec] = field(default_factory=list)
    action_links: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.categories or self.links or self.action_links
                    or self.attributes or self.locations)


def read_pairs(pairs: Iterable[tuple[str, str]], *, strict: bool) -> TextMessage:
    """Collect OCCI values from (name, value) pairs; `strict` refuses unknown names
    (body lines), otherwise they are skipped (ordinary HTTP headers)."""
    message = TextMessage()
    for name, value in pairs:
        key = _NAMES.get(name.strip().lower())
        if key is None:
            if strict:
                raise BadRequest(
                    f"unexpected line {name}: expected Category, Link, X-OCCI-Attribute "
                    "or X-OCCI-Location")
            continue
        for item in split_outside_quotes(value, ","):
            if key == "category":
                message.categories.append(parse_category(item))
            elif key == "link":
                link = parse_link(item)
                if link.target and "?action=" in link.target:
                    message.action_links.append(link.target)
                else:
                    message.links.append(link)
            elif key == "attribute":
                attr_name, attr_value = parse_attribute(item)
                message.attributes[attr_name] = attr_value
            else:
                message.locations.append(item.strip().strip("<>"))
    return message


def body_pairs(text: str) -> list[tuple[str, str]]:
    """`Name: value` lines; lines may end in LF, CRLF or LFCR; an indented line
    continues the previous one; a lone `OK` is ignored."""
    lines: list[str] = []
    for line in _LINE_BREAK.split(text):
        if not line.strip():
            continue
        if line[0] in " \t" and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    pairs = []
    for number, line in enumerate(lines, 1):
        if line.strip() == "OK":
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise BadRequest(f"line {number} is not 'Name: value': {line[:80]!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


# ---------------------------------------------------------------- parsing
class _TextParser(Parser):
    def read(self, request: RequestData) -> None:
        self.message(request)

    def message(self, request: RequestData) -> TextMessage:
        return request.once("text", lambda: self._read(request))

    @abstractmethod
    def _read(self, request: RequestData) -> TextMessage: ...

    def entities(self, request: RequestData, ctx: RenderContext) -> list[EntitySpec]:
        message = self.message(request)
        if not message:
            return []
        kinds, mixins = [], []
        for category in message.categories:
            if category.category_class == "action":
                raise BadRequest(f"action {category.type_id} cannot be part of an entity; "
                                 "trigger it with POST <entity>?action=" + category.term)
            is_kind = category.category_class == "kind" or (
                category.category_class is None and ctx.model.kind(category.type_id))
            (kinds if is_kind else mixins).append(category.type_id)
        if len(kinds) > 1:
            raise BadRequest("an entity rendering names exactly one kind, got " + " ".join(kinds))
        return [EntitySpec(
            kind=kinds[0] if kinds else None,
            mixins=mixins,
            attributes=dict(message.attributes),
            links=message.links,
            actions=message.action_links,
        )]

    def action(self, request: RequestData, ctx: RenderContext) -> ActionSpec:
        message = self.message(request)
        actions = [c for c in message.categories if c.category_class in ("action", None)]
        if len(actions) != len(message.categories):
            raise BadRequest("an action invocation carries one Category of class action")
        if len(actions) > 1:
            raise BadRequest("an action invocation names exactly one action")
        return ActionSpec(actions[0].type_id if actions else None, dict(message.attributes))

    def categories(self, request: RequestData, ctx: RenderContext) -> list[CategorySpec]:
        return self.message(request).categories

    def locations(self, request: RequestData, ctx: RenderContext) -> list[str]:
        return self.message(request).locations


class TextPlainParser(_TextParser):
    media_type = "text/plain"

    def _read(self, request: RequestData) -> TextMessage:
        return read_pairs(body_pairs(request.text()), strict=True)


class TextOcciParser(_TextParser):
    media_type = "text/occi"

    def _read(self, request: RequestData) -> TextMessage:
        message = read_pairs(_decode_headers(request.headers), strict=False)
        if not message and request.body.strip():
            # Some clients label a text/plain body as text/occi.
            return read_pairs(body_pairs(request.text()), strict=True)
        return message


def _decode_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """WSGI hands header values over as Latin-1; clients send UTF-8."""
    decoded = []
    for name, value in headers:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            value = value.encode("latin-1").decode("utf-8")
        decoded.append((name, value))
    return decoded


# ---------------------------------------------------------------- rendering
def category_of(type_id: str, model: Model) -> Category:
    known = model.get(type_id)
    if known is not None:
        return known
    scheme, term = split_type_id(type_id)
    return Category(scheme, term)


def link_value(link: Entity, ctx: RenderContext, *, ascii_only: bool) -> str:
    rel = link.target_kind or RESOURCE
    parts = [f"<{link.target}>", f'rel="{rel}"', f'self="{link.location}"',
             'category="' + " ".join([link.kind, *link.mixins]) + '"']
    parts.extend(render_attribute(name, value, ascii_only=ascii_only)
                 for name, value in ordered_attributes(link, ctx.model).items())
    return "; ".join(parts)


def entity_pairs(entity: Entity, ctx: RenderContext, *, ascii_only: bool
                 ) -> list[tuple[str, str]]:
    model = ctx.model
    pairs = [("Category", render_category(category_of(type_id, model), model, full=False,
                                          ascii_only=ascii_only))
             for type_id in [entity.kind, *entity.mixins]]
    pairs.extend(("Link", link_value(link, ctx, ascii_only=ascii_only))
                 for link in entity.links)
    pairs.extend(("Link", f'<{entity.location}?action={split_type_id(action)[1]}>; '
                          f'rel="{action}"') for action in entity.actions)
    pairs.extend(("X-OCCI-Attribute", render_attribute(name, value, ascii_only=ascii_only))
                 for name, value in ordered_attributes(entity, model).items())
    return pairs


class _TextRenderer(Renderer):
    """The text renderings share their lines; they differ in where the lines go."""

    ascii_only = False
    lists_locations = True

    @abstractmethod
    def emit(self, pairs: list[tuple[str, str]]) -> Rendered: ...

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        return self.emit(entity_pairs(entity, ctx, ascii_only=self.ascii_only))

    def collection(self, entities: Sequence[Entity], ctx: RenderContext,
                   links: bool | None = None) -> Rendered:
        return self.locations(entities, ctx)

    def locations(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        return self.emit([("X-OCCI-Location", ctx.absolute(e.location)) for e in entities])

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        return self.emit([
            ("Category", render_category(c, ctx.model, full=True, ascii_only=self.ascii_only))
            for c in categories])


class TextPlainRenderer(_TextRenderer):
    """text/plain: one `Name: value` line per value, in the body. No newline
    follows the last line, as ooi renders it: IM takes the new entity's id from
    the end of a create's body without stripping it."""

    media_type = "text/plain"
    # No newline after the last line (as emit).
    location_lines = LocationLines(head="X-OCCI-Location: ", end="\n", last="")

    def emit(self, pairs: list[tuple[str, str]]) -> Rendered:
        return Rendered(body="\n".join(f"{name}: {value}" for name, value in pairs))

    def empty(self) -> Rendered:
        return Rendered()

    def error(self, error: OCCIError) -> Rendered:
        return Rendered(body=error.message + "\n")


class TextOcciRenderer(_TextRenderer):
    """text/occi: values comma-joined in HTTP headers (ASCII only), body `OK`."""

    media_type = "text/occi"
    ascii_only = True

    def emit(self, pairs: list[tuple[str, str]]) -> Rendered:
        grouped: dict[str, list[str]] = {}
        for name, value in pairs:
            grouped.setdefault(name, []).append(value)
        return Rendered(body="OK", headers=[(n, ", ".join(v)) for n, v in grouped.items()])

    def empty(self) -> Rendered:
        return Rendered(body="OK")

    def error(self, error: OCCIError) -> Rendered:
        message = quote(error.message, ascii_only=True)[1:-1]
        return Rendered(body=error.message + "\n", headers=[("X-OCCI-Error", message)])

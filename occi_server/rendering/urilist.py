"""text/uri-list (RFC 2483): location lists only."""

from __future__ import annotations

from collections.abc import Sequence

from occi_server.core import Category, Entity
from occi_server.core.specs import ActionSpec, CategorySpec, EntitySpec
from occi_server.errors import BadRequest, OCCIError
from occi_server.rendering.base import (
    LocationLines,
    Parser,
    RenderContext,
    Rendered,
    Renderer,
    RequestData,
)

ONLY_LISTINGS = "text/uri-list renders only collections (location lists)"
LINES = LocationLines(head="", end="\r\n", last="\r\n")  # every line ends in CRLF


class UriListRenderer(Renderer):
    media_type = "text/uri-list"
    listings_only = True
    lists_locations = True
    location_lines = LINES

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        raise BadRequest(ONLY_LISTINGS)

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        raise BadRequest(ONLY_LISTINGS)

    def collection(self, entities: Sequence[Entity], ctx: RenderContext,
                   links: bool | None = None) -> Rendered:
        return self.locations(entities, ctx)

    def locations(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        return Rendered(body=LINES.text([e.location for e in entities], ctx))

    def empty(self) -> Rendered:
        return Rendered()

    def error(self, error: OCCIError) -> Rendered:
        return Rendered(body=f"# {error.status} {error.reason}: {error.message}\r\n")


class UriListParser(Parser):
    media_type = "text/uri-list"

    def read(self, request: RequestData) -> None:
        self._uris(request)

    def locations(self, request: RequestData, ctx: RenderContext) -> list[str]:
        return self._uris(request)

    @staticmethod
    def _uris(request: RequestData) -> list[str]:
        return request.once("uris", lambda: [
            line.strip() for line in request.text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")])

    def entities(self, request: RequestData, ctx: RenderContext) -> list[EntitySpec]:
        raise BadRequest("text/uri-list carries only location lists, not entity renderings")

    def action(self, request: RequestData, ctx: RenderContext) -> ActionSpec:
        raise BadRequest("text/uri-list carries only location lists, not action invocations")

    def categories(self, request: RequestData, ctx: RenderContext) -> list[CategorySpec]:
        raise BadRequest("text/uri-list carries only location lists, not categories")

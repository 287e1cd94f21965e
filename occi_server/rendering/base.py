"""What every rendering offers: parse requests into specs, render results."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from occi_server.core import Category, Entity, Model
from occi_server.core.specs import ActionSpec, CategorySpec, EntitySpec
from occi_server.errors import BadRequest, OCCIError


@dataclass
class RenderContext:
    """The model in force and the server's base URL (scheme://host[:port][/prefix])."""

    model: Model
    base_url: str

    def absolute(self, path: str) -> str:
        return path if "://" in path else self.base_url.rstrip("/") + path

    def local_path(self, reference: str) -> str:
        """A path on this server for a location given as path or absolute URL;
        an absolute URL of another server is returned unchanged."""
        if "://" not in reference:
            return reference if reference.startswith("/") else "/" + reference
        ours = urlsplit(self.base_url)
        theirs = urlsplit(reference)
        if theirs.netloc.lower() == ours.netloc.lower():
            prefix = ours.path.rstrip("/")
            path = theirs.path
            if prefix and path.startswith(prefix):
                path = path[len(prefix):]
            return path or "/"
        return reference


@dataclass(frozen=True)
class LocationLines:
    """How a location list sent in pieces is written: each location made
    absolute after `head`, `end` after every line but the last, `last` after
    the last."""

    head: str
    end: str
    last: str

    def pieces(self, chunks: Iterable[bytes], ctx: RenderContext) -> Iterator[bytes]:
        """The list as sent, chunk by chunk as they are read (each chunk the
        paths of its locations, one a line, UTF-8 encoded)."""
        start = (self.head + ctx.base_url.rstrip("/")).encode()
        between = self.end.encode() + start
        written = False
        for chunk in chunks:
            if chunk:
                yield (between if written else start) + chunk.replace(b"\n", between)
                written = True
        if written and self.last:
            yield self.last.encode()

    def text(self, locations: Iterable[str], ctx: RenderContext) -> str:
        """The list of these locations, whole."""
        return b"".join(self.pieces(["\n".join(locations).encode()], ctx)).decode()


@dataclass
class Rendered:
    body: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RequestData:
    """The parts of an HTTP request a parser may read, and what a parser made
    of them (kept, so the request is read once, before any transaction opens)."""

    body: bytes
    headers: list[tuple[str, str]]
    read: dict[str, Any] = field(default_factory=dict)

    def once(self, what: str, make: Callable[[], Any]) -> Any:
        if what not in self.read:
            self.read[what] = make()
        return self.read[what]

    def text(self) -> str:
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the request body is not valid UTF-8") from None


class Renderer(ABC):
    """Renders results in one media type."""

    media_type: str
    listings_only = False  # text/uri-list renders nothing but location lists
    # Its collections say where the members are, nothing else of them.
    lists_locations = False
    # How its location lists are sent in pieces (None: they are not; their lines are headers).
    location_lines: LocationLines | None = None

    @abstractmethod
    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered: ...

    @abstractmethod
    def collection(self, entities: Sequence[Entity], ctx: RenderContext,
                   links: bool | None = None) -> Rendered:
        """A GET on a collection of links (True), of resources (False) or of
        either (None)."""

    def collection_pieces(self, chunks: Iterable[Sequence[Entity]], ctx: RenderContext,
                          links: bool) -> Iterator[bytes] | None:
        """A whole collection of links (or resources) rendered chunk by chunk,
        to be sent as it is made (UTF-8 encoded); None where the rendering
        cannot be sent so (its lines are headers)."""
        return None

    @abstractmethod
    def locations(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        """Where entities are, e.g. after a create."""

    @abstractmethod
    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered: ...

    @abstractmethod
    def empty(self) -> Rendered:
        """A success with nothing to say."""

    @abstractmethod
    def error(self, error: OCCIError) -> Rendered: ...


class Parser(ABC):
    """Parses request bodies (and, for text/occi, headers) of one media type."""

    media_type: str

    @abstractmethod
    def read(self, request: RequestData) -> None:
        """Parse what needs no model (the syntax), keeping the result in `request`.
        The service calls this before its transaction opens, so a large or
        malformed body never holds the store's lock."""

    @abstractmethod
    def entities(self, request: RequestData, ctx: RenderContext) -> list[EntitySpec]: ...

    @abstractmethod
    def action(self, request: RequestData, ctx: RenderContext) -> ActionSpec: ...

    @abstractmethod
    def categories(self, request: RequestData, ctx: RenderContext) -> list[CategorySpec]: ...

    @abstractmethod
    def locations(self, request: RequestData, ctx: RenderContext) -> list[str]: ...


def split_type_id(type_id: str) -> tuple[str, str]:
    """(scheme, term) of a type identifier; the scheme ends in '#'."""
    scheme, sep, term = type_id.rpartition("#")
    if not sep:
        return type_id, ""
    return scheme + "#", term

"""Content negotiation: which renderer answers (Accept, with q-values) and
which parser reads the body (Content-Type)."""

from __future__ import annotations

from dataclasses import dataclass

from occi_server.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from occi_server.rendering.base import Parser, Renderer
from occi_server.rendering.json import JsonParser, JsonRenderer
from occi_server.rendering.text import (
    TextOcciParser,
    TextOcciRenderer,
    TextPlainParser,
    TextPlainRenderer,
)
from occi_server.rendering.urilist import ONLY_LISTINGS, UriListParser, UriListRenderer

# Server preference, used when the client accepts several types equally.
_RENDERERS: dict[str, Renderer] = {
    "text/plain": TextPlainRenderer(),
    "text/occi": TextOcciRenderer(),
    "application/occi+json": JsonRenderer(),
    "text/uri-list": UriListRenderer(),
}
# Aliases answer in the name the client used, but are never chosen by a wildcard.
_ALIASES = {"text/occi+plain": "text/plain", "application/json": "application/occi+json"}
_PARSERS: dict[str, Parser] = {
    "text/plain": TextPlainParser(),
    "text/occi+plain": TextPlainParser(),
    "text/occi": TextOcciParser(),
    "application/occi+json": JsonParser(),
    "application/json": JsonParser(),
    "text/uri-list": UriListParser(),
}
DEFAULT_TYPE = "text/plain"
SUPPORTED = [*_RENDERERS, *_ALIASES]


@dataclass(frozen=True)
class Negotiated:
    media_type: str  # what goes into Content-Type
    renderer: Renderer


def _parse_accept(header: str) -> list[tuple[str, float]]:
    entries = []
    for item in header.split(","):
        media, *params = [p.strip() for p in item.split(";")]
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        entries.append((media.lower(), quality))
    return entries


def _quality(candidate: str, entries: list[tuple[str, float]], *, alias: bool) -> float | None:
    """The q of the most specific Accept entry matching candidate, or None."""
    main = candidate.split("/")[0]
    for pattern in (candidate,) if alias else (candidate, f"{main}/*", "*/*"):
        for media, quality in entries:
            if media == pattern:
                return quality
    return None


def choose_renderer(accept: str | None, *, listing: bool) -> Negotiated:
    """The best renderer for this Accept header. `listing` says whether the
    response is a location list (the only thing text/uri-list can carry)."""
    entries = _parse_accept(accept or "")
    if not entries:
        return Negotiated(DEFAULT_TYPE, _RENDERERS[DEFAULT_TYPE])
    best: tuple[float, int, str] | None = None
    preference = [*_RENDERERS, *_ALIASES]
    uri_list_wanted = False
    for rank, candidate in enumerate(preference):
        quality = _quality(candidate, entries, alias=candidate in _ALIASES)
        if not quality:
            continue
        if candidate == "text/uri-list" and not listing:
            uri_list_wanted = True
            continue
        key = (quality, -rank, candidate)
        if best is None or key > best:
            best = key
    if best is None:
        if uri_list_wanted:
            raise BadRequest(ONLY_LISTINGS)
        raise NotAcceptable(
            f"none of the accepted media types ({accept}) is available; "
            f"this server renders {', '.join(SUPPORTED)}")
    media_type = best[2]
    return Negotiated(media_type, _RENDERERS[_ALIASES.get(media_type, media_type)])


def fallback_renderer() -> Negotiated:
    return Negotiated(DEFAULT_TYPE, _RENDERERS[DEFAULT_TYPE])


def choose_parser(content_type: str | None) -> Parser:
    """The parser for a request's Content-Type. Without one, OCCI data may
    still come in headers (text/occi style) or a text/plain body. A list of
    types (IM sends `text/plain,text/occi`) is read as its first supported one,
    as rOCCI and ooi do; parameters and case do not matter."""
    types = [item.split(";")[0].strip().lower() for item in (content_type or "").split(",")]
    types = [media for media in types if media]
    if not types:
        return _PARSERS["text/occi"]
    parser = next((_PARSERS[media] for media in types if media in _PARSERS), None)
    media = ", ".join(types)
    if parser is None:
        raise UnsupportedMediaType(
            f"cannot read a {media} body; send Content-Type: text/plain, text/occi or "
            "application/occi+json (curl: -H 'Content-Type: text/plain')")
    return parser

"""Content negotiation (GFD.223 §3.2): Accept with q-values, aliases, 406, 415."""

from __future__ import annotations

import pytest

from occi_server.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from occi_server.rendering import choose_parser, choose_renderer
from occi_server.rendering.json import JsonParser
from occi_server.rendering.text import TextOcciParser, TextPlainParser


@pytest.mark.parametrize(("accept", "listing", "chosen"), [
    (None, False, "text/plain"),
    ("*/*", False, "text/plain"),
    ("text/*", True, "text/plain"),
    ("application/*", False, "application/occi+json"),
    ("text/occi", False, "text/occi"),
    ("application/json", False, "application/json"),
    ("text/occi+plain", False, "text/occi+plain"),
    ("text/plain,text/occi;q=0.2", False, "text/plain"),
    ("text/plain;q=0.1, application/occi+json", False, "application/occi+json"),
    ("text/uri-list", True, "text/uri-list"),
    ("text/uri-list, text/plain;q=0.5", False, "text/plain"),
    ("application/xml, */*;q=0.1", False, "text/plain"),
])
def test_choice(accept: str | None, listing: bool, chosen: str) -> None:
    assert choose_renderer(accept, listing=listing).media_type == chosen


def test_unsupported_accept_is_406() -> None:
    with pytest.raises(NotAcceptable, match="application/xml"):
        choose_renderer("application/xml", listing=False)


def test_zero_quality_excludes_a_type() -> None:
    with pytest.raises(NotAcceptable):
        choose_renderer("text/plain;q=0", listing=False)


def test_uri_list_for_a_non_listing_is_400() -> None:
    with pytest.raises(BadRequest, match="text/uri-list"):
        choose_renderer("text/uri-list", listing=False)


@pytest.mark.parametrize(("content_type", "parser"), [
    ("text/plain", TextPlainParser), ("text/plain; charset=utf-8", TextPlainParser),
    ("text/occi", TextOcciParser), ("application/occi+json", JsonParser),
    ("application/json", JsonParser), (None, TextOcciParser),
    # A list, as IM's OCCI connector sends: its first type this server reads.
    ("text/plain,text/occi", TextPlainParser), ("Text/OCCI; charset=UTF-8", TextOcciParser),
    ("application/xml, application/occi+json", JsonParser),
])
def test_parser_choice(content_type: str | None, parser: type) -> None:
    assert isinstance(choose_parser(content_type), parser)


def test_unsupported_content_type_is_415() -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Type"):
        choose_parser("application/x-www-form-urlencoded")

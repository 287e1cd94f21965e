"""Renderings: parse requests into specs, render results, negotiate types."""

from occi_server.rendering.base import RenderContext, Rendered, RequestData
from occi_server.rendering.negotiation import (
    SUPPORTED,
    Negotiated,
    choose_parser,
    choose_renderer,
    fallback_renderer,
)

__all__ = [
    "SUPPORTED",
    "Negotiated",
    "RenderContext",
    "Rendered",
    "RequestData",
    "choose_parser",
    "choose_renderer",
    "fallback_renderer",
]

"""The base URL a request's locations are written with (scheme, host, the
application's root), worked out by werkzeug once per distinct request origin
rather than on every request."""

from __future__ import annotations

from flask import request

# Request parts werkzeug builds the host URL from.
_ORIGIN = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")
# Host headers are the client's: past this many origins, they are worked out each time.
_KEPT = 64
_known: dict[tuple[object, ...], str] = {}


def known_base_url(environ: dict[str, object]) -> str | None:
    """The base URL of a request from an origin already seen (None: not yet)."""
    return _known.get(tuple(environ.get(name) for name in _ORIGIN))


def base_url() -> str:
    found = known_base_url(request.environ)
    if found is None:
        found = request.host_url.rstrip("/") + request.script_root
        if len(_known) < _KEPT:
            _known[tuple(request.environ.get(name) for name in _ORIGIN)] = found
    return found

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


def base_url() -> str:
    environ = request.environ
    origin = tuple(environ.get(name) for name in _ORIGIN)
    found = _known.get(origin)
    if found is None:
        found = request.host_url.rstrip("/") + request.script_root
        if len(_known) < _KEPT:
            _known[origin] = found
    return found

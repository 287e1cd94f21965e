"""The one place where errors become HTTP responses."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from occi_server import errors
from occi_server.cimi import views as cimi
from occi_server.rendering import choose_renderer, fallback_renderer
from occi_server.rendering.negotiation import Negotiated

log = logging.getLogger("occi_server.http")

_BY_STATUS: dict[int, type[errors.OCCIError]] = {
    cls.status: cls for cls in (
        errors.BadRequest, errors.Unauthorized, errors.Forbidden, errors.NotFound,
        errors.NotAcceptable, errors.Conflict, errors.PayloadTooLarge,
        errors.UnsupportedMediaType, errors.TooManyRequests, errors.NotImplementedFeature,
        errors.BackendUnavailable,
    )
}


def negotiated_for_error() -> Negotiated:
    try:
        return choose_renderer(request.headers.get("Accept"), listing=True)
    except errors.OCCIError:
        return fallback_renderer()


def error_response(error: errors.OCCIError) -> Response:
    if request.blueprint == cimi.blueprint.name:  # the other protocol renders its own
        return cimi.error_response(error)
    negotiated = negotiated_for_error()
    rendered = negotiated.renderer.error(error)
    response = Response(rendered.body, status=error.status, content_type=negotiated.media_type)
    for name, value in [*rendered.headers, *error.headers.items()]:
        response.headers[name] = value
    return response


def occi_error(error: HTTPException, max_body_bytes: int) -> errors.OCCIError:
    """What Werkzeug raised (a body too large, a bad method), as this server's error."""
    if isinstance(error, RequestEntityTooLarge):
        return errors.PayloadTooLarge(f"the request body is larger than {max_body_bytes} bytes")
    status = error.code or 500
    if status == 405:
        allowed = list(getattr(error, "valid_methods", None) or [])
        return errors.MethodNotAllowed(error.description or "", allowed)
    cls = _BY_STATUS.get(status, errors.InternalError)
    return cls(error.description or cls.reason)


def register_error_handlers(app: Flask, max_body_bytes: int) -> None:
    @app.errorhandler(errors.OCCIError)
    def _occi_error(error: errors.OCCIError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return error_response(occi_error(error, max_body_bytes))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(errors.InternalError(
            "the server failed unexpectedly; nothing was changed. The error is in the "
            "server log"))

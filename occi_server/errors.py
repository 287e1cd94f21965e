"""The one error hierarchy. Each class carries its HTTP status; the HTTP layer
maps them to responses in a single handler."""

from __future__ import annotations


class OCCIError(Exception):
    """Base of every error a client may see. `message` says what to do about it."""

    status = 500
    reason = "Internal Server Error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadRequest(OCCIError):
    status, reason = 400, "Bad Request"


class Unauthorized(OCCIError):
    status, reason = 401, "Unauthorized"


class Forbidden(OCCIError):
    status, reason = 403, "Forbidden"


class NotFound(OCCIError):
    status, reason = 404, "Not Found"


class MethodNotAllowed(OCCIError):
    status, reason = 405, "Method Not Allowed"

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allowed)})


class NotAcceptable(OCCIError):
    status, reason = 406, "Not Acceptable"


class Conflict(OCCIError):
    status, reason = 409, "Conflict"


class PayloadTooLarge(OCCIError):
    status, reason = 413, "Payload Too Large"


class UnsupportedMediaType(OCCIError):
    status, reason = 415, "Unsupported Media Type"


class TooManyRequests(OCCIError):
    status, reason = 429, "Too Many Requests"


class InternalError(OCCIError):
    status, reason = 500, "Internal Server Error"


class InsufficientStorage(OCCIError):
    status, reason = 507, "Insufficient Storage"


class NotImplementedFeature(OCCIError):
    status, reason = 501, "Not Implemented"


class BackendUnavailable(OCCIError):
    status, reason = 503, "Service Unavailable"


class BackendFailure(Exception):
    """Raised by a backend when the infrastructure refused an operation.

    The service turns it into an entity `error` state (for actions) or a 503
    (for creates, which leave nothing behind)."""

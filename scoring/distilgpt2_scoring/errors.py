"""Errors a request can meet, each client error carrying its HTTP status (MLServer / KServe style).

score.run() turns a ServingError into an AMLResponse with this status and `to_body()`;
anything else is a server fault (500, logged, never shown to the client).
"""

from __future__ import annotations


class ServingError(Exception):
    """A request the service refuses; the message names the problem, `field` the offending part."""

    status: int = 400
    error_type: str = "bad_request"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_body(self) -> dict:
        return {"error": self.message, "field": self.field, "error_type": self.error_type}

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ServingError):
    """Not a request at all: not JSON, not an object, wrong method."""

    status = 400
    error_type = "bad_request"


class MethodNotAllowed(ServingError):
    status = 405
    error_type = "method_not_allowed"


class PayloadTooLarge(ServingError):
    status = 413
    error_type = "payload_too_large"


class InvalidInput(ServingError):
    """Well-formed JSON whose content breaks a rule (types, ranges, limits, unknown names)."""

    status = 422
    error_type = "validation"


class Overloaded(ServingError):
    """The bounded queue is full: come back later (429, as text-generation-inference does)."""

    status = 429
    error_type = "overloaded"

    def __init__(self, message: str, field: str | None = None, retry_after: int = 1):
        super().__init__(message, field)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ModelNotReady(ServingError):
    status = 503
    error_type = "model_not_ready"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class DeadlineExceeded(ServingError):
    """The request's deadline (TEXTGEN_REQUEST_TIMEOUT_MS) passed: it was dropped, never answered late."""

    status = 503
    error_type = "deadline_exceeded"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class ClientGone(Exception):
    """The client disconnected while its request was generated; nobody will read the answer."""


class EngineFailed(Exception):
    """The engine failed while generating (a server fault: 500, logged, never a client's mistake)."""

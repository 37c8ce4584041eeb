"""Errors a request can meet, each client error carrying its HTTP status (MLServer / KServe style).

score.run() turns a ServingError into an AMLResponse with this status, `headers()` and
`to_body()`; anything else is a server fault (500, logged, never shown to the client).
"""

from __future__ import annotations


class ServingError(Exception):
    """A request the service refuses; the message names the problem, `field` the offending part
    (in the client's own words), `prompt_index` the prompt it is about (None: the whole request),
    so that in-process callers (batch rows, evaluation rows) find their row without reading `field`.

    Subclasses declare their answer: `class X(ServingError, status=422, error_type="validation")`;
    retry_after (seconds) adds a Retry-After header.
    """

    status: int = 400
    error_type: str = "bad_request"
    retry_after: int | None = None

    def __init_subclass__(
        cls, status: int | None = None, error_type: str | None = None, retry_after: int | None = None, **kwargs
    ):
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.error_type = error_type or cls.error_type
        cls.retry_after = retry_after or cls.retry_after

    def __init__(
        self, message: str, field: str | None = None, retry_after: int | None = None, prompt_index: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after or self.retry_after
        self.prompt_index = prompt_index

    def to_body(self) -> dict:
        return {"error": self.message, "field": self.field, "error_type": self.error_type}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class BadRequest(ServingError, status=400, error_type="bad_request"):
    """Not a request at all: not JSON, not an object, not UTF-8."""


class MethodNotAllowed(ServingError, status=405, error_type="method_not_allowed"):
    """Not a POST."""


class PayloadTooLarge(ServingError, status=413, error_type="payload_too_large"):
    """A body over TEXTGEN_MAX_BODY_BYTES."""


class RequestTimeout(ServingError, status=408, error_type="request_timeout"):
    """A body that stopped arriving (http_worker's read time limits)."""


class InvalidInput(ServingError, status=422, error_type="validation"):
    """Well-formed JSON whose content breaks a rule (types, ranges, limits, unknown names)."""


class Overloaded(ServingError, status=429, error_type="overloaded", retry_after=1):
    """Too many sequences in flight: come back later (429, as text-generation-inference does)."""


class ModelNotReady(ServingError, status=503, error_type="model_not_ready", retry_after=5):
    """The model is loading, or the engine has stopped."""


class DeadlineExceeded(ServingError, status=503, error_type="deadline_exceeded", retry_after=1):
    """The request's deadline (TEXTGEN_REQUEST_TIMEOUT_MS) passed: it was dropped, never answered late."""


class Cancelled(ServingError, status=499, error_type="cancelled"):
    """The client went away while its answer streamed: the stream's last event, for whoever still reads."""


class InternalError(ServingError, status=500, error_type="internal"):
    """A server fault after a streamed answer began: its status line is sent, so it ends the stream as an event."""


class ContextOverflow(Exception):
    """The service's finding that a request does not fit the model's context: prompt `prompt_index`
    is `prompt_tokens` long, or (prompt_index None) max_new_tokens alone leaves no room. The codec
    words it in the request's own field names (a 422)."""

    def __init__(self, prompt_index: int | None, prompt_tokens: int, max_new_tokens: int, context_size: int):
        super().__init__(f"prompt {prompt_index}: {prompt_tokens} + {max_new_tokens} tokens > {context_size}")
        self.prompt_index = prompt_index
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.context_size = context_size


class ClientGone(Exception):
    """The client disconnected while its request was generated; nobody will read the answer."""


class EngineFailed(Exception):
    """The engine failed while generating (a server fault: 500, logged, never a client's mistake)."""

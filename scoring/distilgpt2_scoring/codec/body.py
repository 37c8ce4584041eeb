"""The request body: read within the size limit (the one place it is enforced), then parsed as a JSON object."""

from __future__ import annotations

import json
from typing import IO

from ..errors import BadRequest, PayloadTooLarge, RequestTimeout


def read_body(stream: IO[bytes], content_length: int | None, limit: int) -> bytes:
    """At most `limit` bytes; 413 when the body is larger, announced or not (no Content-Length); 408 when
    it stops arriving (the socket's read time limit, http_worker)."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"request body is {content_length} bytes; the limit is {limit}", "body")
    try:
        body = stream.read(limit + 1)
    except TimeoutError:
        raise RequestTimeout("the request body stopped arriving; send it whole, without pauses", "body") from None
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes", "body")
    return body


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_body(body: bytes) -> dict:
    """The request body as a JSON object: 400 when not UTF-8, not JSON or not an object."""
    if not body.strip():
        raise BadRequest('request body is empty; expected a JSON object such as {"input_data": ["text"]}', "body")
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 ({exc.reason} at byte {exc.start})", "body") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {str(exc)[:200]}", "body") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"request body must be a JSON object, got a JSON {type(payload).__name__}", "body")
    return payload

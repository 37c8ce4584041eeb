"""Request bytes -> GenerationRequest, and Completions -> the answer, in the shape the request came in.

Two shapes (each module decodes its requests and encodes its answers and streamed events):
- published: the published request of this model on Azure ML and the older shapes clients still send;
- openai: OpenAI's completions request (a body with `prompt`).
Streamed answers are server-sent events: `data: <JSON>` per event, then `data: [DONE]`.
"""

from __future__ import annotations

import json
from typing import Any

from . import openai, published
from .body import decode_body, read_body
from .request import Completion, GenerationRequest, RequestFields, ServedModel, checked_prompts, context_overflow

__all__ = [
    "Completion",
    "GenerationRequest",
    "RequestFields",
    "ServedModel",
    "checked_prompts",
    "context_overflow",
    "decode",
    "decode_body",
    "encode",
    "events",
    "read_body",
    "server_sent",
]
SHAPES = {"published": published, "openai": openai}
DONE = "[DONE]"


def decode(payload: dict, served: ServedModel) -> GenerationRequest:
    """A JSON object -> a validated GenerationRequest (422 naming the first problem). A body with
    `prompt` and neither input_data nor inputs is an OpenAI completions request."""
    is_openai = "prompt" in payload and not {"input_data", "inputs"} & payload.keys()
    return (openai if is_openai else published).decode(payload, served)


def encode(request: GenerationRequest, completions: list[Completion], served: ServedModel) -> Any:
    return SHAPES[request.shape].encode(request, completions, served)


def events(request: GenerationRequest, served: ServedModel):
    """The streamed answer's events: start(), piece(index, text), last(completion, text), end(completions)."""
    return SHAPES[request.shape].Events(request, served)


def server_sent(event: dict | str) -> str:
    """One server-sent event: `data: <JSON>` (or `data: [DONE]`) and a blank line."""
    return f"data: {event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)}\n\n"

"""OpenAI's completions shape on /score: a body with `prompt` instead of `input_data`.

Read: model, prompt (a string or a list of strings), max_tokens (default 16, as OpenAI), temperature
(0 to 2; 0 is greedy decoding, as OpenAI), top_p, stop (up to 4), seed, n (more than 1 only when
sampling), echo, stream and stream_options.include_usage. Every other field OpenAI defines
(logprobs, best_of, suffix, logit_bias, ...) gets a 422 that names it: none is silently ignored.
Answer: a `text_completion` object (id, created, model, choices with text, index, finish_reason,
usage), or `text_completion` chunks as server-sent events when streaming, then `data: [DONE]`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from ..errors import InvalidInput, ServingError
from ..messages import quoted
from ..params import MAX_TOP_K, _boolean, _integer, _number, parse_params
from .request import (
    Completion,
    GenerationRequest,
    RequestFields,
    ServedModel,
    check_prompt_count,
    checked_prompts,
    unknown_fields,
)

FIELDS = (
    "model",
    "prompt",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "echo",
    "stream",
    "stream_options",
)
# OpenAI's names for our params, so that messages use the client's words.
SPELLINGS = {"max_new_tokens": "max_tokens", "return_full_text": "echo"}
FIELDS_NAMED = RequestFields(prompts="prompt", max_new_tokens="max_tokens", truncate=None)  # OpenAI cannot truncate
DEFAULT_MAX_TOKENS = 16
MAX_TEMPERATURE = 2.0
# OpenAI knows two reasons: the model stopped (its end-of-sequence token, or a stop string) or ran out.
FINISH_REASONS = {"eos": "stop", "stop": "stop", "length": "length"}


def _prompts(payload: dict) -> list[str]:
    if "prompt" not in payload:
        raise InvalidInput("prompt is missing: an OpenAI completions request has a prompt", "prompt")
    prompt = payload["prompt"]
    return checked_prompts([prompt] if isinstance(prompt, str) else prompt, "prompt")


def _number_in(payload: dict, field: str, default: float, high: float) -> float:
    value = _number(field, payload.get(field, default))
    if not 0 <= value <= high:
        raise InvalidInput(f"{field} must be between 0 and {high:g}, got {quoted(value)}", field)
    return value


def decode(payload: dict, served: ServedModel) -> GenerationRequest:
    unknown_fields(payload, FIELDS, f"the OpenAI completions fields served here are {', '.join(FIELDS)}")
    if "model" in payload and payload["model"] != served.name:
        raise InvalidInput(
            f"model {quoted(payload['model'])} is not served here; this endpoint serves {served.name}", "model"
        )
    prompts = _prompts(payload)
    samples = _integer("n", payload.get("n", 1))
    temperature = _number_in(payload, "temperature", 1.0, MAX_TEMPERATURE)
    if not 1 <= samples <= served.max_prompts:
        raise InvalidInput(f"n must be between 1 and {served.max_prompts}, got {quoted(samples)}", "n")
    if samples > 1 and temperature == 0:
        raise InvalidInput("n > 1 needs sampling: with temperature 0 every completion would be the same", "n")
    check_prompt_count(len(prompts) * samples, served, "prompt")
    stream = _boolean("stream", payload.get("stream", False))
    options = payload.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict) or set(options) - {"include_usage"}):
        raise InvalidInput(
            'stream_options is {"include_usage": true|false}, and only with stream: true', "stream_options"
        )
    raw = {
        "max_new_tokens": payload.get("max_tokens", DEFAULT_MAX_TOKENS),
        "do_sample": temperature > 0,
        "temperature": temperature if temperature > 0 else 1.0,
        "top_p": payload.get("top_p", 1.0),
        "top_k": MAX_TOP_K,  # OpenAI has no top-k cut
        "repetition_penalty": 1.0,
        "return_full_text": payload.get("echo", False),
        "stream": stream,
    }
    raw |= {name: payload[name] for name in ("stop", "seed") if payload.get(name) is not None}
    params = parse_params(raw, served.defaults, served.max_new_tokens, field="", spellings=SPELLINGS)
    include_usage = _boolean("stream_options.include_usage", (options or {}).get("include_usage", False))
    return GenerationRequest(
        tuple(prompts), params, FIELDS_NAMED, shape="openai", samples=samples, include_usage=include_usage
    )


def model_list(served: ServedModel) -> dict:
    """GET /v1/models: the one model served here."""
    return {"object": "list", "data": [{"id": served.name, "object": "model", "created": 0, "owned_by": "azureml"}]}


class _Envelope:
    """id, created and model, the same on every chunk of one answer."""

    def __init__(self, model: str):
        self.fields = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
        }


def _usage(completions: list[Completion], prompts: int) -> dict:
    prompt_tokens = sum(
        c.prompt_tokens for c in completions[:: len(completions) // prompts]
    )  # each prompt once, whatever n
    completion_tokens = sum(c.completion_tokens for c in completions)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _choice(index: int, text: str, finish_reason: str | None) -> dict:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def encode(request: GenerationRequest, completions: list[Completion], served: ServedModel) -> dict:
    choices = [
        _choice(c.index, c.full_text if request.params.return_full_text else c.text, FINISH_REASONS[c.finish_reason])
        for c in completions
    ]
    return _Envelope(served.name).fields | {"choices": choices, "usage": _usage(completions, len(request.prompts))}


class Events:
    """The streamed answer: text_completion chunks sharing one id, each choice's last one with its
    finish_reason; with stream_options.include_usage, a last chunk with the usage."""

    def __init__(self, request: GenerationRequest, served: ServedModel):
        self.request = request
        self.envelope = _Envelope(served.name)

    def _chunk(self, choices: list[dict], **extra: Any) -> dict:
        return self.envelope.fields | {"choices": choices} | extra

    def start(self) -> Iterator[dict]:
        """With echo, each choice's prompt first (OpenAI streams the echoed prompt before the text)."""
        if self.request.params.return_full_text:
            for index in range(len(self.request.prompts) * self.request.samples):
                yield self._chunk([_choice(index, self.request.prompts[index // self.request.samples], None)])

    def piece(self, index: int, text: str) -> dict:
        return self._chunk([_choice(index, text, None)])

    def last(self, completion: Completion, text: str) -> dict:
        return self._chunk([_choice(completion.index, text, FINISH_REASONS[completion.finish_reason])])

    def end(self, completions: list[Completion]) -> Iterator[dict]:
        if self.request.include_usage:
            yield self._chunk([], usage=_usage(completions, len(self.request.prompts)))

    def error(self, error: ServingError) -> dict:
        """An error after the answer began, as OpenAI's streams carry one."""
        return {"error": {"message": error.message, "type": error.error_type, "param": error.field, "code": None}}

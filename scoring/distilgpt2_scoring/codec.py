"""Request bytes -> GenerationRequest, and results -> the published response (a JSON list of strings).

Accepted payload shapes (the format changed between published versions of this model, and
Azure clients still send all of them):
  {"input_data": ["prompt", ...], "params": {...}}                          current (the model card)
  {"input_data": {"input_string": ["prompt", ...], "parameters": {...}}}    older Azure text generation
  {"input_data": {"input_string": [...]}, "parameters": {...}}              same, parameters outside
  {"inputs": "prompt" | ["prompt", ...], "parameters": {...}}               Hugging Face / TGI style
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, InvalidInput, PayloadTooLarge
from .params import GenerationParams, parse_params

_TOP_LEVEL = ("input_data", "inputs", "params", "parameters")
_LEGACY_INPUT = ("input_string", "parameters")


@dataclass(frozen=True)
class GenerationRequest:
    prompts: tuple[str, ...]
    params: GenerationParams


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_body(body: bytes, max_body_bytes: int) -> dict:
    """The request body as a JSON object: 413 when too large, 400 when not JSON or not an object."""
    if len(body) > max_body_bytes:
        raise PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {max_body_bytes}", "body")
    if not body.strip():
        raise BadRequest("request body is empty; expected a JSON object such as {\"input_data\": [\"text\"]}", "body")
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 ({exc.reason} at byte {exc.start})", "body") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", "body") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"request body must be a JSON object, got a JSON {type(payload).__name__}", "body")
    return payload


def _one_of(payload: dict, names: tuple[str, str], what: str) -> tuple[str | None, Any]:
    present = [n for n in names if n in payload]
    if len(present) > 1:
        raise InvalidInput(f"give {what} as {names[0]} or as {names[1]}, not both", present[1])
    return (present[0], payload[present[0]]) if present else (None, None)


def _prompts_and_params(payload: dict) -> tuple[str, list[str], str, Any]:
    """(field the prompts came in, prompts, field the params came in, raw params)."""
    unknown = sorted(set(payload) - set(_TOP_LEVEL))
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(unknown)}; a request has input_data (or inputs) and params", unknown[0]
        )
    input_name, inputs = _one_of(payload, ("input_data", "inputs"), "the prompts")
    params_name, params = _one_of(payload, ("params", "parameters"), "the parameters")
    if input_name is None:
        raise InvalidInput("input_data is missing: expected {\"input_data\": [\"text\", ...]}", "input_data")
    if input_name == "inputs" and isinstance(inputs, str):
        inputs = [inputs]
    if input_name == "input_data" and isinstance(inputs, dict):
        unknown = sorted(set(inputs) - set(_LEGACY_INPUT))
        if unknown or "input_string" not in inputs:
            raise InvalidInput(
                "input_data as an object must hold input_string (a list of prompts) and optionally parameters",
                f"input_data.{unknown[0]}" if unknown else "input_data.input_string",
            )
        if "parameters" in inputs:
            if params_name is not None:
                raise InvalidInput(f"give the parameters once, not in input_data and in {params_name}", params_name)
            params_name, params = "input_data.parameters", inputs["parameters"]
        input_name, inputs = "input_data.input_string", inputs["input_string"]
    return input_name, checked_prompts(inputs, input_name), params_name or "params", params


def checked_prompts(inputs: Any, field: str) -> list[str]:
    if not isinstance(inputs, list):
        raise InvalidInput(f"{field} must be a list of strings, got a JSON {_json_type(inputs)}", field)
    if not inputs:
        raise InvalidInput(f"{field} is empty; give at least one prompt", field)
    for index, prompt in enumerate(inputs):
        if not isinstance(prompt, str):
            raise InvalidInput(f"{field}[{index}] must be a string, got a JSON {_json_type(prompt)}", f"{field}[{index}]")
        if not prompt:
            raise InvalidInput(f"{field}[{index}] is an empty string; prompts need text", f"{field}[{index}]")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON allows "\ud800"; the tokenizer does not
            raise InvalidInput(
                f"{field}[{index}] is not valid Unicode (unpaired surrogate at character {exc.start})", f"{field}[{index}]"
            ) from None
    return inputs


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def decode_request(
    payload: dict, defaults: GenerationParams, *, max_prompts: int, max_new_tokens: int
) -> GenerationRequest:
    """A decoded JSON object -> a validated GenerationRequest (422 naming the first problem)."""
    input_field, prompts, params_field, raw_params = _prompts_and_params(payload)
    if len(prompts) > max_prompts:
        raise InvalidInput(f"{input_field} holds {len(prompts)} prompts; the limit per request is {max_prompts}", input_field)
    return GenerationRequest(tuple(prompts), parse_params(raw_params, defaults, max_new_tokens, params_field))


def encode_texts(request: GenerationRequest, generated: list[str]) -> list[str]:
    """One string per prompt, cut before the first stop string, with the prompt when return_full_text."""
    texts = [_cut_at_stop(text, request.params.stop) for text in generated]
    if request.params.return_full_text:
        return [prompt + text for prompt, text in zip(request.prompts, texts)]
    return texts


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]

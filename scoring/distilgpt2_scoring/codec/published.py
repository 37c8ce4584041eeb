"""The published request and answer shapes of this model on Azure ML, and their streamed form.

Accepted payload shapes (the format changed between published versions of this model, and Azure
clients still send all of them):
  {"input_data": ["prompt", ...], "params": {...}}                          current (the model card)
  {"input_data": {"input_string": ["prompt", ...], "parameters": {...}}}    older Azure text generation
  {"input_data": {"input_string": [...]}, "parameters": {...}}              same, parameters outside
  {"inputs": "prompt" | ["prompt", ...], "parameters": {...}}               Hugging Face / TGI style
  {"inputs": {"input_string": [...]}, "parameters": {...}}                  LangChain's GPT2ContentFormatter
Answers:
  a JSON list with one string per prompt (the published answer, byte for byte: with
  return_full_text false, the new text without surrounding whitespace, as mlflow.transformers strips it);
  for LangChain's GPT2 request, one {"0": text} per prompt instead (the answer that formatter reads);
  params.details: one object per prompt (generated_text, finish_reason, token counts, seed);
  params.stream: server-sent events, one per new piece of text, then each prompt's last event
  with finish_reason and usage, then `data: [DONE]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import InvalidInput, ServingError
from ..params import parse_params
from .request import (
    Completion,
    GenerationRequest,
    RequestFields,
    ServedModel,
    check_prompt_count,
    checked_prompts,
    unknown_fields,
)

TOP_LEVEL = ("input_data", "inputs", "params", "parameters")
_LEGACY_INPUT = ("input_string", "parameters")
GPT2_PROMPTS = "inputs.input_string"  # where LangChain's GPT2ContentFormatter puts its prompts


def _one_of(payload: dict, names: tuple[str, str], what: str) -> tuple[str | None, Any]:
    present = [n for n in names if n in payload]
    if len(present) > 1:
        raise InvalidInput(f"give {what} as {names[0]} or as {names[1]}, not both", present[1])
    return (present[0], payload[present[0]]) if present else (None, None)


def _prompts_and_params(payload: dict) -> tuple[str, list[str], str, Any]:
    """(field the prompts came in, prompts, field the params came in, raw params)."""
    unknown_fields(payload, TOP_LEVEL, "a request has input_data (or inputs) and params, or OpenAI's prompt")
    input_name, inputs = _one_of(payload, ("input_data", "inputs"), "the prompts")
    params_name, params = _one_of(payload, ("params", "parameters"), "the parameters")
    if input_name is None:
        raise InvalidInput('input_data is missing: expected {"input_data": ["text", ...]}', "input_data")
    if input_name == "inputs" and isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - set(_LEGACY_INPUT))
        if unknown or "input_string" not in inputs:
            field = f"{input_name}." + (str(unknown[0])[:40] if unknown else "input_string")
            raise InvalidInput(
                f"{input_name} as an object must hold input_string (a list of prompts) and optionally parameters", field
            )
        if "parameters" in inputs:
            if params_name is not None:
                raise InvalidInput(f"give the parameters once, not in {input_name} and in {params_name}", params_name)
            params_name, params = f"{input_name}.parameters", inputs["parameters"]
        input_name, inputs = f"{input_name}.input_string", inputs["input_string"]
    return input_name, checked_prompts(inputs, input_name), params_name or "params", params


def decode(payload: dict, served: ServedModel) -> GenerationRequest:
    """A decoded JSON object in one of the accepted shapes -> a validated GenerationRequest."""
    input_field, prompts, params_field, raw_params = _prompts_and_params(payload)
    check_prompt_count(len(prompts), served, input_field)
    params = parse_params(raw_params, served.defaults, served.max_new_tokens, params_field)
    fields = RequestFields(input_field, f"{params_field}.max_new_tokens", f"{params_field}.truncate")
    return GenerationRequest(tuple(prompts), params, fields, keyed_answer=input_field == GPT2_PROMPTS)


def _answer_text(request: GenerationRequest, completion: Completion) -> str:
    """The stock deployment's text: mlflow.transformers strips the new text (" to learn" -> "to learn")."""
    return completion.full_text if request.params.return_full_text else completion.text.strip()


def encode(request: GenerationRequest, completions: list[Completion], served: ServedModel) -> list:
    """One string per prompt ({"0": text} for LangChain's GPT2 request), or with params.details one object each."""
    if not request.params.details:
        texts = [_answer_text(request, c) for c in completions]
        return [{"0": text} for text in texts] if request.keyed_answer else texts
    return [
        {
            "generated_text": _answer_text(request, c),
            "finish_reason": c.finish_reason,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
        }
        | ({"seed": c.seed} if c.seed is not None else {})
        for c in completions
    ]


class Events:
    """The streamed answer: {"index", "text"} per new piece, each prompt's last event with
    finish_reason and usage (and the seed of a sampled prompt)."""

    def __init__(self, request: GenerationRequest, served: ServedModel):
        self.request = request

    def start(self) -> Iterator[dict]:
        """With return_full_text, each prompt first: the joined events equal the non-streamed answer."""
        if self.request.params.return_full_text:
            for index, prompt in enumerate(self.request.prompts):
                yield {"index": index, "text": prompt}

    def piece(self, index: int, text: str) -> dict:
        return {"index": index, "text": text}

    def last(self, completion: Completion, text: str) -> dict:
        usage = {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens}
        last = {"index": completion.index, "text": text, "finish_reason": completion.finish_reason, "usage": usage}
        return last | ({"seed": completion.seed} if completion.seed is not None else {})

    def end(self, completions: list[Completion]) -> Iterator[dict]:
        return iter(())

    def error(self, error: ServingError) -> dict:
        """An error after the answer began (its status line is sent): the error body as an event."""
        return error.to_body()

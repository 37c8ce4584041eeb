"""What every codec decodes into and encodes from: a GenerationRequest in, Completions out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidInput
from ..messages import name, names
from ..params import GenerationParams
from ..stopping import FinishReason


@dataclass(frozen=True)
class ServedModel:
    """What the codecs need to know of the server: the model's name and defaults, and the limits
    of one request (TEXTGEN_MAX_PROMPTS, TEXTGEN_MAX_NEW_TOKENS)."""

    name: str
    defaults: GenerationParams
    max_prompts: int
    max_new_tokens: int


@dataclass(frozen=True)
class GenerationRequest:
    prompts: tuple[str, ...]
    params: GenerationParams
    shape: Literal["published", "openai"] = "published"
    samples: int = 1  # sequences per prompt (OpenAI's n)
    include_usage: bool = False  # OpenAI streaming: a last chunk with the usage


@dataclass(frozen=True)
class Completion:
    """One sequence's answer: its generated text (cut before a stop string, without the prompt)."""

    index: int  # position among the request's sequences: prompt index x samples + sample
    prompt: str
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    seed: int | None = None

    @property
    def full_text(self) -> str:
        return self.prompt + self.text


def checked_prompts(inputs: Any, field: str) -> list[str]:
    if not isinstance(inputs, list):
        raise InvalidInput(f"{field} must be a list of strings, got a JSON {json_type(inputs)}", field)
    if not inputs:
        raise InvalidInput(f"{field} is empty; give at least one prompt", field)
    for index, prompt in enumerate(inputs):
        if not isinstance(prompt, str):
            raise InvalidInput(
                f"{field}[{index}] must be a string, got a JSON {json_type(prompt)}", f"{field}[{index}]"
            )
        if not prompt:
            raise InvalidInput(f"{field}[{index}] is an empty string; prompts need text", f"{field}[{index}]")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON allows "\ud800"; the tokenizer does not
            raise InvalidInput(
                f"{field}[{index}] is not valid Unicode (unpaired surrogate at character {exc.start})",
                f"{field}[{index}]",
            ) from None
    return inputs


def json_value(text: str) -> Any:
    """A line of a JSONL file or a setting's JSON text, parsed; ValueError "not valid JSON: <why> (column N)"."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None


def json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def unknown_fields(payload: dict, known: tuple[str, ...] | set[str], what: str) -> None:
    """422 naming (at most five of) the fields a shape does not have."""
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise InvalidInput(f"unknown field(s) {names(unknown)}; {what}", name(unknown[0]))


def check_prompt_count(count: int, served: ServedModel, field: str) -> None:
    if count > served.max_prompts:
        raise InvalidInput(f"{field} holds {count} prompts; the limit per request is {served.max_prompts}", field)

"""What every codec decodes into and encodes from: a GenerationRequest in, Completions out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from ..errors import ContextOverflow, InvalidInput
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
class RequestFields:
    """The client's own names for what the service may refuse, so that its errors use them:
    prompt i is `{prompts}[i]`; truncate None when the shape has no truncation."""

    prompts: str = "input_data"
    max_new_tokens: str = "params.max_new_tokens"
    truncate: str | None = "params.truncate"


@dataclass(frozen=True)
class GenerationRequest:
    prompts: tuple[str, ...]
    params: GenerationParams
    fields: RequestFields = RequestFields()
    shape: Literal["published", "openai"] = "published"
    samples: int = 1  # sequences per prompt (OpenAI's n)
    include_usage: bool = False  # OpenAI streaming: a last chunk with the usage
    keyed_answer: bool = False  # answer [{"0": text}, ...], the older Azure shape LangChain's GPT2 formatter reads


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
            _refuse_prompt(field, index, f"must be a string, got a JSON {json_type(prompt)}")
        if not prompt:
            _refuse_prompt(field, index, "is an empty string; prompts need text")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON allows "\ud800"; the tokenizer does not
            _refuse_prompt(field, index, f"is not valid Unicode (unpaired surrogate at character {exc.start})")
    return inputs


def _refuse_prompt(field: str, index: int, problem: str) -> NoReturn:
    raise InvalidInput(f"{field}[{index}] {problem}", f"{field}[{index}]", prompt_index=index) from None


def context_overflow(request: GenerationRequest, overflow: ContextOverflow) -> InvalidInput:
    """The service's ContextOverflow, worded in the request's own field names."""
    tokens = request.fields.max_new_tokens
    context = f"the model's {overflow.context_size}-token"
    if overflow.prompt_index is None:
        return InvalidInput(
            f"{tokens} {overflow.max_new_tokens} leaves no room for a prompt in {context} context", tokens
        )
    prompt = f"{request.fields.prompts}[{overflow.prompt_index}]"
    truncate = request.fields.truncate
    return InvalidInput(
        f"{prompt} is {overflow.prompt_tokens} tokens; with {tokens} {overflow.max_new_tokens} that is over "
        f"{context} limit. Shorten the prompt, lower {tokens}"
        + (f", or set {truncate} to true to keep only the prompt's last tokens" if truncate else ""),
        prompt,
        prompt_index=overflow.prompt_index,
    )


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

"""Generation parameters, declared once in PARAMS: their types, ranges, defaults and documentation.

Validation (parse_params) and the swagger (swagger.py) both read PARAMS. Rules follow
text-generation-inference (the strictest peer): a bad value is a 422 naming the parameter, never
an exception inside the engine thread. Every number is bounded, so that no JSON value, however
large, reaches code that could overflow. Defaults come from the MLmodel signature (the published
asset's params schema) and the model's generation_config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput
from .messages import name, names, quoted

MAX_STOP_STRINGS = 4
MAX_SEED = 2**32 - 1  # the engines' random seeds are 32-bit
MAX_TOP_K = 2**31 - 1  # any k beyond the vocabulary means all of it
# Positive float params must stay computable in float32 logits: beyond these, values underflow
# to 0 or overflow and an engine would fail instead of answering.
SMALLEST, LARGEST = 1e-6, 1e6


@dataclass(frozen=True)
class GenerationParams:
    # Field defaults are transformers' GenerationConfig defaults; the asset's own defaults
    # (the MLmodel signature) override them in signature_defaults().
    max_new_tokens: int = 20
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float = 1.0
    return_full_text: bool = True
    stop: tuple[str, ...] = ()
    seed: int | None = None
    truncate: bool = False
    stream: bool = False
    details: bool = False

    @property
    def greedy(self) -> bool:
        """Sampling that can only pick the most likely token is greedy decoding."""
        return not self.do_sample or self.top_k == 1

    def sampling_key(self) -> tuple:
        """Sequences whose keys are equal can share one sampling pass (max_new_tokens and stop may differ)."""
        if self.greedy:
            return ("greedy", self.repetition_penalty)
        return ("sample", self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.seed)


def _integer(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer, got {quoted(value)}", field)
    return value


def _number(field: str, value: Any) -> float:
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:  # a JSON integer too large for a float
        number = math.nan
    if not math.isfinite(number):
        raise InvalidInput(f"{field} must be a finite number, got {quoted(value)}", field)
    return number


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false, got {quoted(value)}", field)
    return value


def _stop(field: str, value: Any) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise InvalidInput(f"{field} must be a list of non-empty strings, got {quoted(value)}", field)
    if len(stops) > MAX_STOP_STRINGS:
        raise InvalidInput(f"{field} has {len(stops)} strings; at most {MAX_STOP_STRINGS} are allowed", field)
    return tuple(stops)


def _seed(field: str, value: Any) -> int | None:
    return None if value is None else _integer(field, value)


@dataclass(frozen=True)
class Param:
    """One request parameter. `rule` is (minimum, maximum, words), checked after parsing; a
    maximum of None is the server's limit for it (TEXTGEN_MAX_NEW_TOKENS)."""

    name: str
    kind: str  # its JSON schema type
    parse: Callable[[str, Any], Any]
    description: str
    rule: tuple[float, float | None, str] | None = None


PARAMS = (
    Param(
        "max_new_tokens",
        "integer",
        _integer,
        "Tokens to generate, 1 to TEXTGEN_MAX_NEW_TOKENS ({max_new_tokens}); prompt + new tokens <= the model's "
        "context (1024).",
        (1, None, "between 1 and {high}"),
    ),
    Param("do_sample", "boolean", _boolean, "Sample (true) or greedy decoding (false)."),
    Param(
        "temperature",
        "number",
        _number,
        "Sampling temperature, > 0 when do_sample is true.",
        (0, LARGEST, f"> 0 when do_sample is true (between {SMALLEST:g} and {LARGEST:g}; never negative)"),
    ),
    Param(
        "top_p",
        "number",
        _number,
        "Nucleus sampling: 0 < top_p <= 1.",
        (SMALLEST, 1, f"in (0, 1] (at least {SMALLEST:g})"),
    ),
    Param(
        "top_k",
        "integer",
        _integer,
        "Sample among the k most likely tokens, k >= 1 (1 is greedy).",
        (1, MAX_TOP_K, ">= 1 (at most {high})"),
    ),
    Param(
        "repetition_penalty",
        "number",
        _number,
        "> 0; above 1 discourages repeating tokens.",
        (SMALLEST, LARGEST, f"> 0 (between {SMALLEST:g} and {LARGEST:g})"),
    ),
    Param(
        "return_full_text",
        "boolean",
        _boolean,
        "Answer with prompt + generated text (true) or the generated text only.",
    ),
    Param("stop", "array", _stop, "Up to {max_stop} strings; the text ends before the first one generated."),
    Param(
        "seed",
        "integer",
        _seed,
        "0 to {max_seed}: the same seed (and params) gives the same sampled text.",
        (0, MAX_SEED, "between 0 and {high}"),
    ),
    Param(
        "truncate",
        "boolean",
        _boolean,
        "Keep only the prompt's last tokens when prompt + max_new_tokens exceeds the context, instead of a 422.",
    ),
    Param(
        "stream",
        "boolean",
        _boolean,
        "Answer as server-sent events (text/event-stream), a piece of text as soon as it is made.",
    ),
    Param(
        "details",
        "boolean",
        _boolean,
        "Answer one object per prompt: generated_text, finish_reason, token counts, seed.",
    ),
)
PARAM_NAMES = tuple(p.name for p in PARAMS)
assert PARAM_NAMES == tuple(f.name for f in fields(GenerationParams)), (
    "PARAMS and GenerationParams must list the same names"
)
_BY_NAME = {p.name: p for p in PARAMS}


def _check_ranges(params: GenerationParams, max_new_tokens: int, fields_named: Callable[[str], str]) -> None:
    for param in PARAMS:
        value = getattr(params, param.name)
        if param.rule is None or value is None:
            continue
        low, high, words = param.rule
        high = max_new_tokens if high is None else high
        if not low <= value <= high or (param.name == "temperature" and params.do_sample and value < SMALLEST):
            field = fields_named(param.name)
            raise InvalidInput(f"{field} must be {words.format(high=high)}, got {quoted(value)}", field)


def parse_params(
    raw: Any,
    defaults: GenerationParams,
    max_new_tokens: int,
    field: str = "params",
    spellings: dict[str, str] | None = None,
) -> GenerationParams:
    """Request params (a JSON object or null) over the defaults, type- and range-checked.

    `field` is where the client put them ("params", "parameters", ...) and `names` how it spelled
    each one in `spellings` (OpenAI's max_tokens is our max_new_tokens), so messages use the client's words.
    """
    spellings = spellings or {}

    def spelled(param: str) -> str:
        spelling = spellings.get(param, param)
        return f"{field}.{spelling}" if field else spelling

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"{field} must be a JSON object, got {quoted(raw)}", field)
    unknown = sorted(set(raw) - set(PARAM_NAMES))
    if unknown:
        raise InvalidInput(
            f"unknown parameter(s) {names(unknown)} in {field}; supported: {', '.join(PARAM_NAMES)}",
            spelled(name(unknown[0])),
        )
    values = {param: _BY_NAME[param].parse(spelled(param), value) for param, value in raw.items()}
    params = replace(defaults, **values)
    _check_ranges(params, max_new_tokens, spelled)
    return params


def signature_defaults(mlflow_dir: Path) -> GenerationParams:
    """Defaults from the MLmodel signature's params schema, top_k from generation_config.json."""
    mlmodel = yaml.safe_load((Path(mlflow_dir) / "MLmodel").read_text())
    schema = json.loads((mlmodel.get("signature") or {}).get("params") or "[]")
    values = {p["name"]: p["default"] for p in schema if p.get("name") in PARAM_NAMES and p.get("default") is not None}
    generation_config = Path(mlflow_dir) / "model" / "generation_config.json"
    if generation_config.is_file():
        config = json.loads(generation_config.read_text())
        for param in ("top_k", "repetition_penalty"):
            if param in config:
                values.setdefault(param, config[param])
    return replace(GenerationParams(), **{k: _BY_NAME[k].parse(k, v) for k, v in values.items()})

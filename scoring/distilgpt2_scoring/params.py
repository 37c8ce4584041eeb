"""Generation parameters: their types, ranges and defaults, checked before anything reaches a model.

Rules follow text-generation-inference (the strictest peer): a bad value is a 422 naming the
parameter, never a ValueError inside a worker thread. Defaults come from the MLmodel
signature (the published asset's params schema) and the model's generation_config.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput

MAX_STOP_STRINGS = 4
MAX_SEED = 2**32 - 1  # CTranslate2's random seed is 32-bit
# Positive float params must stay computable in float32 logits: beyond these, values underflow
# to 0 or overflow and the engines fail (a 500) instead of answering.
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

    @property
    def greedy(self) -> bool:
        """Sampling that can only pick the most likely token is greedy decoding."""
        return not self.do_sample or self.top_k == 1

    def sampling_key(self) -> tuple:
        """Prompts whose keys are equal can share one sampling pass (max_new_tokens and stop may differ)."""
        if self.greedy:
            return ("greedy", self.repetition_penalty)
        return ("sample", self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.seed)


PARAM_NAMES = tuple(f.name for f in fields(GenerationParams))


# Each parser takes the field's name as the client spelled it (e.g. "params.top_k") and its value.
def _integer(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer, got {_show(value)}", field)
    return value


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number, got {_show(value)}", field)
    return float(value)


def _boolean(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false, got {_show(value)}", field)
    return value


def _stop(field: str, value: Any) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise InvalidInput(f"{field} must be a list of non-empty strings, got {_show(value)}", field)
    if len(stops) > MAX_STOP_STRINGS:
        raise InvalidInput(f"{field} has {len(stops)} strings; at most {MAX_STOP_STRINGS} are allowed", field)
    return tuple(stops)


def _seed(field: str, value: Any) -> int | None:
    if value is None:
        return None
    seed = _integer(field, value)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"{field} must be between 0 and {MAX_SEED}, got {seed}", field)
    return seed


_PARSERS = {
    "max_new_tokens": _integer,
    "do_sample": _boolean,
    "temperature": _number,
    "top_p": _number,
    "top_k": _integer,
    "repetition_penalty": _number,
    "return_full_text": _boolean,
    "stop": _stop,
    "seed": _seed,
    "truncate": _boolean,
}


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_ranges(p: GenerationParams, max_new_tokens: int, prefix: str) -> None:
    def fail(name: str, rule: str, value: Any) -> None:
        raise InvalidInput(f"{prefix}.{name} must be {rule}, got {_show(value)}", f"{prefix}.{name}")

    computable = f"between {SMALLEST:g} and {LARGEST:g}"
    if not 1 <= p.max_new_tokens <= max_new_tokens:
        fail("max_new_tokens", f"between 1 and {max_new_tokens}", p.max_new_tokens)
    if p.temperature < 0 or (p.do_sample and not SMALLEST <= p.temperature <= LARGEST):
        fail("temperature", f"> 0 when do_sample is true ({computable}; never negative)", p.temperature)
    if not SMALLEST <= p.top_p <= 1:
        fail("top_p", f"in (0, 1] (at least {SMALLEST:g})", p.top_p)
    if p.top_k < 1:
        fail("top_k", ">= 1", p.top_k)
    if not SMALLEST <= p.repetition_penalty <= LARGEST:
        fail("repetition_penalty", f"> 0 ({computable})", p.repetition_penalty)


def parse_params(raw: Any, defaults: GenerationParams, max_new_tokens: int, field: str = "params") -> GenerationParams:
    """Request params (a JSON object or null) over the defaults, type- and range-checked.

    `field` is where the client put them ("params", "parameters", ...), so messages use its words.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput(f"{field} must be a JSON object, got {_show(raw)}", field)
    unknown = sorted(set(raw) - set(PARAM_NAMES))
    if unknown:
        raise InvalidInput(
            f"unknown parameter(s) {', '.join(unknown)} in {field}; supported: {', '.join(PARAM_NAMES)}",
            f"{field}.{unknown[0]}",
        )
    params = replace(defaults, **{name: _PARSERS[name](f"{field}.{name}", value) for name, value in raw.items()})
    _check_ranges(params, max_new_tokens, field)
    return params


def signature_defaults(mlflow_dir: Path) -> GenerationParams:
    """Defaults from the MLmodel signature's params schema, top_k from generation_config.json."""
    mlmodel = yaml.safe_load((Path(mlflow_dir) / "MLmodel").read_text())
    schema = json.loads((mlmodel.get("signature") or {}).get("params") or "[]")
    values = {p["name"]: p["default"] for p in schema if p.get("name") in PARAM_NAMES and p.get("default") is not None}
    generation_config = Path(mlflow_dir) / "model" / "generation_config.json"
    if generation_config.is_file():
        config = json.loads(generation_config.read_text())
        for name in ("top_k", "repetition_penalty"):
            if name in config:
                values.setdefault(name, config[name])
    return replace(GenerationParams(), **{k: _PARSERS[k](k, v) for k, v in values.items()})

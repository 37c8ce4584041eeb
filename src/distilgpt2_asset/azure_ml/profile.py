"""What an online deployment does per instance: its engine, its speed and the request timeout it needs.

Pure logic over the deployment's settings and the measured engine speeds: no Azure call.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AssetError, invalid_as_asset_error
from ..skus import canonical_sku, sku_catalog
from ..spec import AssetSpec

if TYPE_CHECKING:
    from distilgpt2_scoring.hardware import EngineName

# Raw decode throughput of each engine on a distilgpt2-shaped model, 2 vCPUs, per CPU class, written by
# `python -m distilgpt2_asset.bench engine-speeds`. 2 vCPUs is inference-min-sku-spec's floor.
ENGINE_SPEEDS_FILE = Path("benchmarks") / "engine-speeds.json"
TIMEOUT_HEADROOM = 1.5  # prompt prefill, queueing for a batch slot, a noisy neighbour
NO_CODE_ENGINE: EngineName = "transformers"  # Azure's no-code MLflow scoring runs the transformers pipeline


def lowest_measured_speed(spec: AssetSpec, engine: str, batch: int) -> tuple[float, str]:
    """(tokens/s summed over `batch` sequences, where it was measured): the lowest figure over the CPU
    classes an allowed SKU may land on (D*a_v4 run on AVX2-only AMD EPYC; F*s_v2 on AVX-512 Intel). A
    class where this engine was not measured counts with the slowest engine that was measured there; a
    class measured on a loaded machine (under_load) sizes nothing until measured on a quiet one."""
    path = spec.path.parent / ENGINE_SPEEDS_FILE
    try:
        classes = json.loads(path.read_text())["classes"]
    except (OSError, ValueError, KeyError) as exc:
        raise AssetError(
            f"{path}: cannot read the measured engine speeds ({exc}); "
            "run python -m distilgpt2_asset.bench engine-speeds"
        ) from None
    figures = []
    for cpu_class, measured in classes.items():
        if measured.get("under_load"):
            continue
        at_batch = {name: rates[str(batch)] for name, rates in measured["engines"].items() if str(batch) in rates}
        if engine in at_batch:
            figures.append((at_batch[engine], f"{engine} on {cpu_class}"))
        elif at_batch:
            slowest = min(at_batch, key=lambda name: at_batch[name])
            figures.append((at_batch[slowest], f"{cpu_class}, where {engine} was not measured: {slowest}'s"))
    return min(figures)


@dataclass(frozen=True)
class ServingProfile:
    """What a deployment will do per instance, as far as timeouts and concurrency go."""

    engine: EngineName
    max_new_tokens: int
    batch_size: int  # sequences generated at once at most
    concurrency: int  # requests one instance serves at once (gunicorn workers x threads)
    tokens_per_second: float  # one sequence's speed with a full batch, a lower bound
    measured: str  # where that figure comes from

    @classmethod
    def of(
        cls, spec: AssetSpec, engine: EngineName, max_new_tokens: int, batch_size: int, concurrency: int
    ) -> ServingProfile:
        """continuous and static batches: a full batch shares at least batch 8's measured throughput
        (throughput only grows with batch size), and a static batch may first wait for the one running;
        sequential: a request may wait for each other one in flight."""
        from distilgpt2_scoring.engines import engine_class

        batching = engine_class(engine).batching
        if batching == "sequential":
            total, where = lowest_measured_speed(spec, engine, 1)
            speed = total / batch_size
        else:
            total, where = lowest_measured_speed(spec, engine, 8)
            speed = total / max(batch_size, 8) / (2 if batching == "static" else 1)
        return cls(engine, max_new_tokens, batch_size, concurrency, speed, f"{total:.0f} tokens/s measured for {where}")

    @property
    def required_timeout_ms(self) -> int:
        return math.ceil(self.max_new_tokens / self.tokens_per_second * 1000 * TIMEOUT_HEADROOM)


def gunicorn_concurrency(variables: dict[str, str]) -> int:
    """WORKER_COUNT x gunicorn --threads (azmlinfsrv's gunicorn reads GUNICORN_CMD_ARGS)."""
    gunicorn = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    gunicorn.add_argument("--threads", type=int, default=1)
    try:
        workers = int(variables.get("WORKER_COUNT", "1"))
        threads = gunicorn.parse_known_args(shlex.split(variables.get("GUNICORN_CMD_ARGS", "")))[0].threads
    except (ValueError, argparse.ArgumentError) as exc:
        raise AssetError(f"environment_variables WORKER_COUNT / GUNICORN_CMD_ARGS --threads: {exc}") from None
    if workers < 1 or threads < 1:
        raise AssetError(f"WORKER_COUNT ({workers}) and GUNICORN_CMD_ARGS --threads ({threads}) must be at least 1")
    return workers * threads


def serving_settings(variables: dict[str, str]):
    """The deployment's TEXTGEN_* variables, validated by the scoring code's own settings model."""
    from distilgpt2_scoring.settings import ENV_PREFIX, ServingSettings

    values = {k[len(ENV_PREFIX) :].lower(): v for k, v in variables.items() if k.startswith(ENV_PREFIX)}
    unknown = sorted(ENV_PREFIX + k.upper() for k in values if k not in ServingSettings.model_fields)
    if unknown:
        raise AssetError(f"environment_variables: unknown serving setting(s) {', '.join(unknown)}")
    # model_validate, not the constructor: only the deployment's values, never this shell's env.
    with invalid_as_asset_error("environment_variables", lambda location: f" {ENV_PREFIX}{location.upper() or '*'}"):
        return ServingSettings.model_validate(values)


def serving_profile(spec: AssetSpec, deployment: Any) -> ServingProfile:
    variables = {str(k): str(v) for k, v in (deployment.environment_variables or {}).items()}
    concurrency = gunicorn_concurrency(variables)
    if deployment.code_configuration is None:
        # Azure's own MLflow scoring: no cap on max_new_tokens; the card's request must fit.
        card_tokens = int(spec.sample_request.get("params", {}).get("max_new_tokens", 0))
        return ServingProfile.of(spec, NO_CODE_ENGINE, card_tokens, concurrency, concurrency)
    settings = serving_settings(variables)
    device = "cuda" if sku_catalog()[str(canonical_sku(deployment.instance_type))].gpus else "cpu"  # checked SKU
    try:
        engine = settings.engine_on(settings.device if settings.device != "auto" else device)
    except ValueError as exc:
        raise AssetError(f"environment_variables: {exc} ({deployment.instance_type} has a GPU)") from None
    return ServingProfile.of(spec, engine, settings.max_new_tokens, settings.max_batch_size, concurrency)

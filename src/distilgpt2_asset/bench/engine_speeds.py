"""Each engine alone on this CPU, per CPU class: what hardware.py's choice per class and deploy's
timeouts rest on.

    python -m distilgpt2_asset.bench engine-speeds     -> benchmarks/engine-speeds.json

Measures OpenVINO GenAI as served (its precision hint, and its activation groups where the class
sets them; named like "f32/q128"), with each precision hint alone (f32, bf16, the CPU plugin's
default) and with f32 activations quantized in groups of each of raw.GROUPS, at batch 1, 8 and 16;
CTranslate2 at 1 and 8 and transformers at 1; alternating over ROUNDS rounds, so that a load that
changes during the run falls on every configuration; each figure is the median of its rounds
(every round's is kept beside it, `rounds`). The figures go under this CPU's class, with its model
name, replacing only that class's entry: each class's figures come from a machine of that class.
CTranslate2 and transformers are also measured held to AVX2 kernels, filed as the avx2 class with
how they were made.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from distilgpt2_scoring.engines import engine_class
from distilgpt2_scoring.hardware import EngineName, openvino_variant

from . import raw
from .machine import machine

ROUNDS = 5
OPENVINO_BATCHES = [1, 8, 16]
WHAT = (
    f"raw decode tokens/s summed over the batch, distilgpt2-shaped model, {raw.NEW_TOKENS} new tokens, greedy; "
    "OpenVINO GenAI with the pipeline the server builds, int8 weights, per configuration (precision, activation groups)"
)


def _batches(engine: EngineName) -> list[int]:
    batching = engine_class(engine).batching
    return [1] if batching == "sequential" else OPENVINO_BATCHES if engine == "openvino" else [1, 8]


def measure_class(mlflow_dir: Path, cache_dir: Path) -> dict[str, dict]:
    """{class: figures} for this CPU's class and, where engines can be held to them, AVX2 kernels."""
    here = machine()
    served_config = raw.served_config(cache_dir)
    served = openvino_variant(str(served_config.precision), served_config.quantization_group)
    # OpenVINO's configurations by name: the served one, then the others (raw.variants; the served
    # one is among them under its own name).
    openvino = {served: raw.SERVED} | {name: name for name in raw.variants()[1:] if name != served}
    runs: dict[tuple[str, EngineName, str], dict[str, list[float]]] = {}  # (class, engine, name) -> rounds per batch
    plan: list[tuple[str, EngineName, str, str, dict[str, str] | None]] = [
        (here["cpu_class"], "openvino", name, precision, None) for name, precision in openvino.items()
    ]
    plan += [(here["cpu_class"], engine, engine, raw.SERVED, None) for engine in ("ctranslate2", "transformers")]
    if here["cpu_class"] != "avx2":
        plan += [("avx2", e, e, raw.SERVED, raw.AVX2_SWITCH[e]) for e in ("ctranslate2", "transformers")]
    load_before = os.getloadavg()
    for round_number in range(1, ROUNDS + 1):
        for cpu_class, engine, name, precision, env in plan:
            label = engine if name == engine else f"{engine} {name}"
            print(f"raw {label} ({cpu_class}), round {round_number} of {ROUNDS}", flush=True)
            rates = raw.measure(engine, mlflow_dir, cache_dir, _batches(engine), env=env, precision=precision)
            rounds = runs.setdefault((cpu_class, engine, name), {})
            for batch, rate in rates.items():
                rounds.setdefault(batch, []).append(rate)
    measured = {
        "cpu": here["cpu"], "cpus": here["cpus"], "cpu_features": here["cpu_features"],
        "when": time.strftime("%Y-%m-%d %H:%M"), "load_average": [load_before[0], os.getloadavg()[0]],
        "how": f"the median of {ROUNDS} alternating rounds; engines.openvino is the served configuration ({served})",
        "under_load": load_before[0] > here["cpus"],  # figures of a busy machine size no timeouts (azure/profile.py)
    }  # fmt: skip
    classes: dict[str, dict] = {}
    for (cpu_class, engine, name), rounds in runs.items():
        rates = {batch: statistics.median(rates) for batch, rates in rounds.items()}
        entry = classes.setdefault(cpu_class, {**measured, "engines": {}, "rounds": {}})
        entry["rounds"][engine if engine != "openvino" else f"openvino/{name}"] = rounds
        if engine == "openvino":
            entry.setdefault("openvino_precision", {})[name] = rates
            if name == served:
                entry["engines"]["openvino"] = rates
        else:
            entry["engines"][engine] = rates
    if "avx2" in classes:
        classes["avx2"]["how"] = (
            f"on this {here['cpu_class']} CPU held to AVX2 kernels (CT2_FORCE_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2); "
            "OpenVINO has no such switch, so it is unmeasured on avx2"
        )
    return classes


def merged(previous: dict | None, classes: dict[str, dict]) -> dict:
    """The engine-speeds file with these classes' entries replaced and every other class's kept."""
    kept = dict((previous or {}).get("classes", {}))
    return {"what": WHAT, "classes": {**kept, **classes}}


def table(speeds: dict) -> str:
    lines = [speeds["what"]]
    for cpu_class, figures in speeds["classes"].items():
        lines.append(f"  {cpu_class} ({figures['cpu']}, {figures['when']}):")
        rows = {**figures["engines"], **{f"openvino {p}": r for p, r in figures.get("openvino_precision", {}).items()}}
        for name, rates in rows.items():
            lines.append(f"    {name:18} " + "  ".join(f"batch {b}: {r:7.1f}" for b, r in rates.items()))
    return "\n".join(lines)


def run(mlflow_dir: Path, cache_dir: Path, output: Path) -> int:
    path = output / "engine-speeds.json"
    previous = json.loads(path.read_text()) if path.is_file() else None
    speeds = merged(previous, measure_class(mlflow_dir, cache_dir))
    path.write_text(json.dumps(speeds, indent=2) + "\n")
    print(table(speeds))
    return 0

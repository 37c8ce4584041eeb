"""(f) Bulk generation: `distilgpt2-asset generate` against the raw engine fed the same prompts in one
process, and the first start of a model folder without engine files (what autoscale's cooldown adds).

    python -m distilgpt2_asset.bench bulk                -> benchmarks/generate.json
    python -m distilgpt2_asset.bench.bulk {ours,raw,conversion} MLFLOW_DIR WORK_DIR
prints one measurement as JSON. Each runs in its own subprocess, one after the other, so that
neither shares the CPU with the other. Prompts: PROMPTS variations of the card's prompt, greedy,
NEW_TOKENS new tokens each; both sides run the pipeline the server's factory builds with the
configuration the server decides (engines.openvino.continuous_batching_pipeline, hardware.decide).
Generation time only: model loading is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .report import machine_line, shown

PROMPTS = 1000
NEW_TOKENS = 64
PARAMS = {"max_new_tokens": NEW_TOKENS, "do_sample": False, "return_full_text": False}
TARGET = 0.8  # ours / raw
ROUNDS = 3  # raw, ours, raw, ours: a load that changes during the run falls on both sides; each side's best counts


def prompts_file(work: Path) -> Path:
    from ..spec import load_spec

    card = load_spec().sample_request["input_data"][0]
    path = work / "prompts.jsonl"
    if not path.is_file():
        path.write_text("".join(json.dumps({"prompt": f"{card} ({i})", "id": i}) + "\n" for i in range(PROMPTS)))
    return path


def _ours(mlflow_dir: Path, work: Path) -> dict:
    from ..bulk_generation import GenerateOptions, generate, summary_dict

    output = work / "generated.jsonl"
    for leftover in work.glob("generated*"):
        leftover.unlink()
    summary = generate(mlflow_dir, prompts_file(work), output, GenerateOptions(params=PARAMS))
    return {**summary_dict(summary), "rows_per_second": summary.rows / summary.seconds}


def _raw(mlflow_dir: Path, work: Path) -> dict:
    """OpenVINO GenAI's continuous batching given every prompt in one generate() call: its own scheduler
    keeps the batch full, with nothing of ours around it (no tokenizer, threads or stopping of ours)."""
    import numpy
    import openvino
    import openvino_genai
    from tokenizers import Tokenizer

    from distilgpt2_scoring.engines.openvino import continuous_batching_pipeline, openvino_model
    from distilgpt2_scoring.hardware import decide
    from distilgpt2_scoring.model_files import open_model
    from distilgpt2_scoring.settings import ServingSettings

    settings = ServingSettings(device="cpu", cache_dir=work / "engine-cache")
    folder = openvino_model(open_model(mlflow_dir), mlflow_dir / "model", settings.cache_dir)
    pipeline = continuous_batching_pipeline(folder, decide(settings))
    tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))
    rows = [json.loads(line)["prompt"] for line in prompts_file(work).read_text().splitlines()]
    ids = [
        openvino.Tensor(numpy.array([tokenizer.encode(p, add_special_tokens=False).ids], dtype=numpy.int64))
        for p in rows
    ]
    config = openvino_genai.GenerationConfig()
    eos = json.loads((mlflow_dir / "model" / "config.json").read_text())["eos_token_id"]
    config.max_new_tokens, config.do_sample, config.eos_token_id = NEW_TOKENS, False, eos  # where ours stops too
    started = time.perf_counter()
    results = pipeline.generate(ids, [config] * len(ids))
    seconds = time.perf_counter() - started
    generated = [list(result.m_generation_ids[0]) for result in results]
    tokens = sum(
        len(ids) - (ids[-1:] == [eos]) for ids in generated
    )  # the end-of-text token is not text: ours drops it too
    return {
        "rows": len(rows),
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "rows_per_second": len(rows) / seconds,
    }


def _conversion(mlflow_dir: Path, work: Path) -> dict:
    """The first start of a folder without the OpenVINO model (Microsoft's published one): its
    conversion into an empty engine cache, as init() makes it."""
    import shutil

    import openvino

    from distilgpt2_scoring.engines.cache import cached_conversion

    cache = work / "first-start-cache"
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    cached_conversion(cache, f"bench-openvino-{openvino.__version__.split('-')[0]}", "openvino", mlflow_dir / "model")
    return {"openvino_conversion_s": time.perf_counter() - started}


MEASUREMENTS = {"ours": _ours, "raw": _raw, "conversion": _conversion}


def measure(name: str, mlflow_dir: Path, work: Path) -> dict:
    command = [sys.executable, "-m", "distilgpt2_asset.bench.bulk", name, str(mlflow_dir), str(work)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{name} measurement failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark(mlflow_dir: Path, work: Path, machine: dict) -> dict:
    """Every measurement of (f), raw and ours alternating, with the ratio of the best runs against its target."""
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"raw": [], "ours": []}
    for round_number in range(1, ROUNDS + 1):
        for name in runs:
            print(f"(f) {name}, round {round_number} of {ROUNDS}", flush=True)
            runs[name].append({**measure(name, mlflow_dir, work), "load_average": os.getloadavg()[0]})
    print("(f) first-start conversion", flush=True)
    results = {name: max(done, key=lambda run: run["tokens_per_second"]) for name, done in runs.items()}
    results["conversion"] = measure("conversion", mlflow_dir, work)
    ratio = results["ours"]["tokens_per_second"] / results["raw"]["tokens_per_second"]
    return {
        "what": (
            f"{PROMPTS} prompts, {NEW_TOKENS} new tokens each, greedy: distilgpt2-asset generate vs the raw "
            "OpenVINO GenAI pipeline given the same prompts in one generate() call; generation time only; "
            f"the best of {ROUNDS} alternating runs each"
        ),
        "model": str(mlflow_dir),
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "raw": results["raw"],
        "ours": results["ours"],
        "runs": {name: [round(run["tokens_per_second"], 1) for run in done] for name, done in runs.items()},
        "first_start": results["conversion"],
        "ratio": {"generate_vs_raw": ratio, "target": TARGET, "met": ratio >= TARGET},
    }


def table(results: dict) -> str:
    raw, ours = results["raw"], results["ours"]
    return "\n".join([
        f"(f) {PROMPTS} prompts x {NEW_TOKENS} new tokens   tokens/s   rows/s",
        f"    raw OpenVINO GenAI              {raw['tokens_per_second']:8.1f} {raw['rows_per_second']:8.2f}",
        f"    distilgpt2-asset generate       {ours['tokens_per_second']:8.1f} {ours['rows_per_second']:8.2f}",
        f"    runs (tokens/s, in order): raw {results['runs']['raw']}, generate {results['runs']['ours']}",
        f"    generate / raw: {shown(results['ratio']['generate_vs_raw'], TARGET)} (target >= {TARGET}); "
        f"first-start OpenVINO conversion {results['first_start']['openvino_conversion_s']:.1f} s; "
        f"load average {results['load_average_before'][0]:.1f} -> {results['load_average_after'][0]:.1f}",
    ])  # fmt: skip


def readme_block(results: dict) -> str:
    """The README's (f) figures, from generate.json."""
    machine = results["machine"]
    before, after = results["load_average_before"][0], results["load_average_after"][0]
    best = {name: results[name]["tokens_per_second"] for name in ("raw", "ours")}
    runs = {name: ", ".join(f"{run:.0f}" for run in results["runs"][name]) for name in ("raw", "ours")}
    ratio = results["ratio"]
    return (
        f"Last run ({results['when']}), {machine_line(machine)}, "
        f"load average {before:.1f} before it and {after:.1f} after:\n\n"
        "| | runs, tokens/s | best | ratio (target) |\n| --- | --- | --- | --- |\n"
        f"| raw OpenVINO GenAI `generate()` | {runs['raw']} | {best['raw']:.0f} | |\n"
        f"| `distilgpt2-asset generate` | {runs['ours']} | {best['ours']:.0f} | "
        f"{shown(ratio['generate_vs_raw'], ratio['target'])} (≥ {ratio['target']:g}) |\n\n"
        f"First-start OpenVINO conversion of the model: {results['first_start']['openvino_conversion_s']:.1f} s.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distilgpt2_asset.bench.bulk")
    parser.add_argument("measurement", choices=MEASUREMENTS)
    parser.add_argument("mlflow_dir", type=Path)
    parser.add_argument("work", type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(MEASUREMENTS[args.measurement](args.mlflow_dir, args.work)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""(h) A finetuned model serves at the base model's speed: bench (a), one request of 100 greedy tokens,
on the distilgpt2-shaped testing model and on the same model finetuned for text generation
(`finetune --task text-generation` on the packaged sample text), each against its own raw engine.

Both servers and both raw engines are up at once and their runs alternate (base raw, base ours,
finetuned raw, finetuned ours, ...), so that a change in the machine's load falls on all alike;
each figure is the median of its runs. Target: the finetuned model's (a) ratio (ours / its raw
engine) within 5% of the base model's.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
from pathlib import Path

from ..paths import PACKAGE_DATA, home
from ..serve import free_port, start_server
from .clients import Counter, greedy_request, request_rate
from .raw import RawEngine

TOLERANCE = 0.05
SAMPLE_TEXT = PACKAGE_DATA / "text-generation"


def finetuned_benchmark_model(base: Path) -> Path:
    """The base finetuned on the packaged sample text (made once under the local home, next to the base)."""
    output = home() / "bench" / f"{base.name}-finetuned"
    if not (output / "MLmodel").is_file():
        command = [
            sys.executable, "-m", "distilgpt2_asset.cli", "finetune", "--task", "text-generation",
            "--source", str(base), "--output", str(output),
            "--train", str(SAMPLE_TEXT / "train.jsonl"), "--validation", str(SAMPLE_TEXT / "validation.jsonl"),
            "--max-length", "128", "--epochs", "1", "--no-register",
        ]  # fmt: skip
        subprocess.run(command, check=True)
    return output


def measure(base: Path, finetuned: Path, cache_dir: Path, log_dir: Path, repeats: int = 7) -> dict:
    """Median tokens/s of `repeats` single requests to each server and as many raw runs of each model."""
    greedy = greedy_request()
    env = {"TEXTGEN_CACHE_DIR": str(cache_dir), "TEXTGEN_ENGINE": "openvino"}
    models = {"base": base, "finetuned": finetuned}
    counts = {name: Counter(folder) for name, folder in models.items()}
    urls, raws = {}, {}
    runs: dict[str, dict[str, list[float]]] = {name: {"raw": [], "ours": []} for name in models}
    with contextlib.ExitStack() as stack:  # servers and raw engines stopped, logs closed, however the runs end
        for name, folder in models.items():
            log = stack.enter_context(open(log_dir / f"{name}-server.log", "w"))
            server = start_server(folder, port=free_port(), threads=16, env=env, log=log)
            stack.callback(server.stop)
            urls[name] = server.score_url
            raws[name] = RawEngine(folder, cache_dir)
            stack.callback(raws[name].close)
            request_rate(urls[name], greedy, counts[name])  # warm-up
        for repeat in range(repeats):
            print(f"(h) run {repeat + 1} of {repeats}: base and finetuned, raw engine and ours", flush=True)
            for name in models:
                runs[name]["raw"].append(raws[name].run(1))
                runs[name]["ours"].append(request_rate(urls[name], greedy, counts[name]))
    figures: dict = {"repeats": repeats, "tolerance": TOLERANCE, "runs": runs}
    for name, folder in models.items():
        raw, ours = (statistics.median(runs[name][side]) for side in ("raw", "ours"))
        figures[name] = {
            "model": str(folder),
            "raw_tokens_per_s": raw,
            "ours_tokens_per_s": ours,
            "a_ours_vs_raw": ours / raw,
        }
    figures["finetuned_vs_base"] = figures["finetuned"]["a_ours_vs_raw"] / figures["base"]["a_ours_vs_raw"]
    return figures


def table(figures: dict) -> str:
    met = "met" if abs(figures["finetuned_vs_base"] - 1) <= figures["tolerance"] else "missed"
    rows = [
        f"(h) {name}: raw engine {figures[name]['raw_tokens_per_s']:.1f} tokens/s, ours "
        f"{figures[name]['ours_tokens_per_s']:.1f} tokens/s, (a) {figures[name]['a_ours_vs_raw']:.3f}"
        for name in ("base", "finetuned")
    ]
    rows.append(
        f"(h) finetuned (a) / base (a): {figures['finetuned_vs_base']:.3f}, target within "
        f"{figures['tolerance']:.0%} ({met}), medians of {figures['repeats']} alternating runs"
    )
    return "\n".join(rows)


def readme_block(figures: dict, machine_line: str) -> str:
    rows = ["| model | raw engine, tokens/s | ours, tokens/s | (a) ours / raw engine |", "| --- | --- | --- | --- |"]
    for name in ("base", "finetuned"):
        raw, ours, ratio = (figures[name][k] for k in ("raw_tokens_per_s", "ours_tokens_per_s", "a_ours_vs_raw"))
        rows.append(f"| {name} | {raw:.1f} | {ours:.1f} | {ratio:.3f} |")
    met = "met" if abs(figures["finetuned_vs_base"] - 1) <= figures["tolerance"] else "missed"
    return "\n".join(rows) + (
        f"\n\nThe finetuned model's (a) is {figures['finetuned_vs_base']:.3f} of the base's (target: within "
        f"{figures['tolerance']:.0%}, {met}); medians of {figures['repeats']} alternating runs, on {machine_line} "
        f"({figures['when']}).\n"
    )

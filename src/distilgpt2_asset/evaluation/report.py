"""What `evaluate` writes: metrics.json, predictions.jsonl and metrics.png, all or nothing.

The files are written to a staging folder next to the output and swapped in at the end, so an
interrupted run never leaves a half-written report (and never mixes two runs' files).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import AssetError
from .metrics import METRIC_NAMES

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
CHART_FILE = "metrics.png"
REPORT_FILES = (METRICS_FILE, PREDICTIONS_FILE, CHART_FILE)


def check_output_folder(output: Path) -> None:
    """Refuse a folder that holds anything but an earlier report: replacing it must lose nothing else."""
    if output.exists() and not output.is_dir():
        raise AssetError(f"{output} is a file; --output must be a folder")
    others = sorted(p.name for p in output.iterdir() if p.name not in REPORT_FILES) if output.is_dir() else []
    if others:
        raise AssetError(
            f"{output} holds files that are not an evaluation report ({', '.join(others[:5])}); choose a new --output"
        )


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, records: Sequence[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def plot_metrics(path: Path, results: dict[str, dict], title: str) -> None:
    """Grouped bars of the overlap metrics per model; perplexity on its own log axis when measured.

    results: {label: {"metrics": {...}}}, in the order the bars should appear.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(results)
    # Only the metrics every model has: Azure's evaluation config computes a subset.
    names = [n for n in METRIC_NAMES if all(n in v["metrics"] for v in results.values())]
    perplexities = {k: v["metrics"]["perplexity"] for k, v in results.items() if "perplexity" in v["metrics"]}
    columns = 2 if perplexities else 1
    figure, axes = plt.subplots(
        1, columns, figsize=(11 if perplexities else 8, 4.5), squeeze=False,
        gridspec_kw={"width_ratios": [3, 1][:columns]},
    )  # fmt: skip
    overlap = axes[0][0]
    width = 0.8 / len(labels)
    for index, label in enumerate(labels):
        positions = [m + (index - (len(labels) - 1) / 2) * width for m in range(len(names))]
        values = [results[label]["metrics"][name] for name in names]
        bars = overlap.bar(positions, values, width, label=label)
        overlap.bar_label(bars, fmt="%.2f", fontsize=7)
    overlap.set_xticks(range(len(names)), names, rotation=30)
    overlap.set_ylim(0, 1.05)
    overlap.set_ylabel("score (0-1, higher is better)")
    overlap.legend(fontsize=8)
    if perplexities:
        ppl = axes[0][1]
        # Bar colours match the legend on the left; tick labels would overlap with long model names.
        colours = [f"C{labels.index(label)}" for label in perplexities]
        bars = ppl.bar(range(len(perplexities)), list(perplexities.values()), color=colours)
        ppl.set_xticks([])
        ppl.bar_label(bars, fmt="%.1f", fontsize=8)
        ppl.set_yscale("log")
        ppl.set_title("perplexity (lower is better)", fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

"""The benchmark's ratios against their targets, its table and its chart."""

from __future__ import annotations

import json
import statistics
from itertools import pairwise
from pathlib import Path

SHORT_SLOWDOWN_TARGET = 2.0  # (d): a short request under mixed traffic / the same request alone, p95
# name: (what, target, higher is better)
TARGETS = {
    "a_ours_vs_raw": ("(a) one request, ours / raw engine", 0.9, True),
    "a_ours_vs_stock": ("(a) one request, ours / stock", 4.0, True),
    "b_ours_vs_stock": ("(b) 8 clients, throughput ours / stock", 25.0, True),
    "b_ours_vs_raw_card": ("(b) 8 clients, throughput ours / raw engine, 8 of the card's request", 0.9, True),
    "b_ours_vs_raw": ("(b) 8 clients, throughput ours / raw engine at batch 8, greedy", None, True),
    "b_p95_vs_stock_p50": ("(b) our p95 / stock's p50", 0.1, False),
    "d_ours_vs_stock": ("(d) mixed traffic, throughput ours / stock", 15.0, True),
    "d_ours_vs_raw_traffic": ("(d) mixed traffic, throughput ours / raw engine given the same traffic", None, True),
    # Runs filed up to 2026-12-04 20:35 measured the raw engine on 8 prompts of 100 tokens with 4 settings instead.
    "d_ours_vs_raw": ("(d) mixed traffic, ours / raw engine, 8 prompts, 4 settings", None, True),
    "d_short_slowdown_p95": (
        "(d) short requests, p95 of each one's time under mixed traffic / alone",
        SHORT_SLOWDOWN_TARGET,
        False,
    ),
    "d_raw_short_slowdown_p95": ("(d) the same on the raw engine, no server", None, False),
    # Runs filed up to 2026-12-03 16:24 measured (d)'s short requests so (clients.ShortRequests says why no longer).
    "d_short_p95_vs_idle": ("(d) short requests' p95 / the median of all short requests alone", 2.0, False),
    "c_rss_gb": ("(c) our peak RSS, GB", 1.0, False),
    "c_cold_start_s": ("(c) our cold start, s (model files in the folder)", 10.0, False),
    "e_first_token_p95_s": ("(e) streaming, time to first token p95, s", 0.5, False),
    "e_streamed_vs_whole": ("(e) streamed / non-streamed throughput at 8 clients", 0.9, True),
    "failures": ("failed requests, all runs", 0, False),
}


def paired(ours_parts: list[float], before: list[float]) -> float:
    """Ours over what was measured just before each part, part by part (their median), so that the
    machine's speed drifting between parts falls on both sides of each."""
    return statistics.median(ours / other for ours, other in zip(ours_parts, before, strict=True))


def bracketed(ours_parts: list[float], raw_runs: list[float]) -> float:
    """Ours over the raw engine, part by part (their median): each part (or request) of ours over the
    mean of the raw runs taken just before and just after it (clients.between_raw_runs), so that the
    machine's speed drifting during a part, not only between parts, falls on both sides of it."""
    if len(raw_runs) != len(ours_parts) + 1:
        raise ValueError(
            f"{len(ours_parts)} parts need {len(ours_parts) + 1} raw runs around them, not {len(raw_runs)}"
        )
    around = [(before + after) / 2 for before, after in pairwise(raw_runs)]
    return paired(ours_parts, around)


def ratios(results: dict) -> dict:
    stock, ours, rawe = results["stock"], results["ours"], results["raw_engine"]
    return {
        "a_ours_vs_raw": bracketed(ours["single"]["runs"], rawe["runs"]["batch_1"]),
        "a_ours_vs_stock": ours["single"]["tokens_per_s"] / stock["single"]["tokens_per_s"],
        "b_ours_vs_stock": ours["uniform"]["tokens_per_s"] / stock["uniform"]["tokens_per_s"],
        "b_ours_vs_raw_card": bracketed(ours["uniform"]["parts_tokens_per_s"], rawe["runs"]["card_8"]),
        "b_ours_vs_raw": bracketed(ours["uniform"]["parts_tokens_per_s"], rawe["runs"]["batch_8"]),
        "b_p95_vs_stock_p50": ours["uniform"]["p95_s"] / stock["uniform"]["p50_s"],
        "d_ours_vs_stock": ours["mixed"]["tokens_per_s"] / stock["mixed"]["tokens_per_s"],
        "d_ours_vs_raw_traffic": bracketed(ours["mixed"]["parts_tokens_per_s"], rawe["runs"]["mixed_traffic"]),
        "d_short_slowdown_p95": ours["short_requests"]["slowdown_p95"],
        **({"d_raw_short_slowdown_p95": rawe["short_requests"]["slowdown_p95"]} if "short_requests" in rawe else {}),
        "c_rss_gb": ours["peak_rss_gb"],
        "c_cold_start_s": ours["cold_start_s"],
        "e_first_token_p95_s": ours["streaming"]["first_token_p95_s"],
        "e_streamed_vs_whole": paired(ours["streaming"]["parts_tokens_per_s"], ours["uniform"]["parts_tokens_per_s"]),
        "failures": sum(
            run[load]["failures"] for run in (stock, ours) for load in ("uniform", "mixed", "streaming") if load in run
        ),
    }


def raw_mixed(raw_engine: dict) -> tuple[float, str]:
    """The raw engine's (d) throughput and what it ran: the same traffic, or in runs filed before that
    was measured, 8 prompts with 4 sampling settings."""
    if "mixed_traffic_tokens_per_s" in raw_engine:
        return raw_engine["mixed_traffic_tokens_per_s"], "the same traffic"
    return raw_engine["mixed_8_tokens_per_s"], "8 prompts, 4 settings"


def meets(value: float, target: float, higher: bool) -> bool:
    return value >= target if higher else value <= target


def shown(value: float, target: float | None, higher: bool = True) -> str:
    """The value to two decimals, or to as many more as it takes for the figure shown to meet or miss
    the target as the value does: 0.897 against ≥ 0.9 reads 0.897, not 0.90."""
    digits = 2
    while target is not None and digits < 6:
        if meets(float(f"{value:.{digits}f}"), target, higher) == meets(value, target, higher):
            break
        digits += 1
    return f"{value:.{digits}f}"


def verdicts(r: dict) -> list[tuple[str, float, float | None, bool | None]]:
    """(what, value, target, met) per ratio; met is None where there is no target (a figure to report)."""
    rows = []
    for name, (what, target, higher) in TARGETS.items():
        if name not in r:  # a run from before this figure was measured
            continue
        value = r[name]
        rows.append((what, value, target, None if target is None else meets(value, target, higher)))
    return rows


TARGETS_BY_WHAT = {what: (name, target, higher) for name, (what, target, higher) in TARGETS.items()}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stock, ours, rawe = results["stock"], results["ours"], results["raw_engine"]
    fig, axes = plt.subplots(1, 5, figsize=(22, 4.4))
    colors = {"stock": "#9e9e9e", "raw engine": "#64b5f6", "ours": "#1565c0"}

    def bars(ax, values: dict, title: str, unit: str):
        ax.bar(list(values), list(values.values()), color=[colors[k] for k in values])
        for i, v in enumerate(values.values()):
            ax.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom")
        ax.set_title(title)
        ax.set_ylabel(unit)

    bars(
        axes[0],
        {
            "stock": stock["single"]["tokens_per_s"],
            "raw engine": rawe["batch_1_tokens_per_s"],
            "ours": ours["single"]["tokens_per_s"],
        },
        "(a) one request",
        "tokens/s",
    )
    bars(
        axes[1],
        {
            "stock": stock["uniform"]["tokens_per_s"],
            "raw engine": rawe["card_8_tokens_per_s"],
            "ours": ours["uniform"]["tokens_per_s"],
        },
        "(b) 8 clients, card's request",
        "tokens/s",
    )
    bars(
        axes[2],
        {
            "stock": stock["mixed"]["tokens_per_s"],
            "raw engine": raw_mixed(rawe)[0],
            "ours": ours["mixed"]["tokens_per_s"],
        },
        "(d) 8 clients, mixed traffic",
        "tokens/s",
    )
    width = 0.38
    for offset, key in ((-width / 2, "p50_s"), (width / 2, "p95_s")):
        values = [
            stock["uniform"][key],
            ours["uniform"][key],
            stock["mixed"]["short_" + key],
            ours["mixed"]["short_" + key],
        ]
        axes[3].bar([i + offset for i in range(4)], values, width, label=key[:3])
    axes[3].set_xticks(range(4), ["stock\n(b)", "ours\n(b)", "stock\nshort (d)", "ours\nshort (d)"])
    axes[3].set_yscale("log")
    axes[3].set_title("latency (log scale)")
    axes[3].set_ylabel("seconds")
    axes[3].legend()
    bars(axes[4], {"stock": stock["peak_rss_gb"], "ours": ours["peak_rss_gb"]}, "(c) peak RSS", "GB")
    config = results["config"]
    fig.suptitle(
        f"distilgpt2-shaped model, {config['cpus']} vCPUs of {config['cpu']} "
        f"({', '.join(config['cpu_features'])}), {config['when']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# The README's figures: generated from benchmarks/*.json, never typed ------------------------------

README_BLOCK = (
    "<!-- generated by python -m distilgpt2_asset.bench readme: {name} -->\n{body}<!-- end of generated {name} -->"
)
RESULTS_FILES = (
    "results.json", "results-by-class.json", "engine-speeds.json", "generate.json", "observability.json",
    "finetuned.json",
)  # fmt: skip


def machine_line(machine: dict) -> str:
    features = ", ".join(machine["cpu_features"])
    return f"{machine['cpus']} vCPUs of an {machine['cpu']} (class {machine['cpu_class']}: {features})"


def headline(results: dict) -> str:
    r, config = results["ratios"], results["config"]
    return (
        f"{r['b_ours_vs_stock']:.1f}x the stock no-code MLflow deployment's throughput with 8 concurrent clients "
        f"sending the card's request, {r['d_ours_vs_stock']:.1f}x with mixed traffic, the first streamed token within "
        f"{r['e_first_token_p95_s']:.2f} s (p95), on {machine_line(config)} ([Benchmark](#benchmark)).\n"
    )


def short_seconds(short: dict) -> str:
    """(d)'s short requests in seconds: p95 under mixed traffic (the median alone per length)."""
    return f"{short['p95_s']:.2f} ({' / '.join(f'{s:.2f}' for s in short['alone_s'].values())})"


def short_requests(results: dict, speeds: dict | None = None) -> str:
    """(d)'s short requests in the last run, ours beside the raw engine's, with the target's verdict;
    with the engine speeds, what a batch-8 step costs against a batch-1 step on the run's class."""
    r, ours, raw_engine = results["ratios"], results["ours"], results["raw_engine"]
    target = SHORT_SLOWDOWN_TARGET
    met = meets(r["d_short_slowdown_p95"], target, higher=False)
    alone = " and ".join(f"{s:.2f} s ({n} tokens)" for n, s in ours["short_requests"]["alone_s"].items())
    slowdown = shown(r["d_short_slowdown_p95"], target, higher=False)
    text = (
        f"In the last run ({results['config']['when']}, {results['config']['cpu_class']}), short requests under "
        f"mixed traffic took {slowdown}x the time of the same request alone at p95, "
        f"{ours['short_requests']['slowdown_p50']:.2f}x at the median (alone: {alone}): target (d) ≤ {target:g}, "
        f"{'met' if met else 'missed'}."
    )
    if "d_raw_short_slowdown_p95" in r:
        text += (
            f" The raw engine, given the same requests from 8 closed loops with no server at all: "
            f"{r['d_raw_short_slowdown_p95']:.2f}x at p95, "
            f"{raw_engine['short_requests']['slowdown_p50']:.2f}x at the median."
        )
    measured = (speeds or {}).get("classes", {}).get(results["config"]["cpu_class"], {})
    if rates := measured.get("engines", {}).get("openvino"):
        text += (
            f" On this class the engine's step with 8 sequences takes {8 * rates['1'] / rates['8']:.1f}x its step with "
            f"one (engine-speeds.json: {rates['8']:.0f} tokens/s over 8 sequences, {rates['1']:.0f} over one): a short "
            "request sharing its steps with seven others is about that much slower, whatever serves it."
        )
    return text + "\n"


def serving_tables(results: dict) -> str:
    """One run's figures and its ratios against the targets."""
    r, config = results["ratios"], results["config"]
    rows = ["| | value | target | |", "| --- | --- | --- | --- |"]
    for what, value, target, met in verdicts(r):
        higher = TARGETS_BY_WHAT[what][2]
        goal = "" if target is None else f"{'≥' if higher else '≤'} {target:g}"
        verdict = "" if met is None else ("met" if met else "missed")
        rows.append(f"| {what} | {shown(value, target, higher)} | {goal} | {verdict} |")
    stock, ours, raw_engine = results["stock"], results["ours"], results["raw_engine"]
    raw_card = f"{raw_engine['batch_8_tokens_per_s']:.1f} (batch 8, greedy)" + (
        f", {raw_engine['card_8_tokens_per_s']:.1f} (8 of the card's request)"
        if "card_8_tokens_per_s" in raw_engine
        else ""
    )
    raw_mixed_rate, raw_mixed_ran = raw_mixed(raw_engine)
    figures = [
        "| | stock | raw engine | ours |", "| --- | --- | --- | --- |",
        (f"| (a) one request, tokens/s | {stock['single']['tokens_per_s']:.1f} | "
         f"{raw_engine['batch_1_tokens_per_s']:.1f} | {ours['single']['tokens_per_s']:.1f} |"),
        (f"| (b) 8 clients, tokens/s | {stock['uniform']['tokens_per_s']:.1f} | {raw_card} | "
         f"{ours['uniform']['tokens_per_s']:.1f} |"),
        (f"| (b) p50 / p95 latency, s | {stock['uniform']['p50_s']:.1f} / {stock['uniform']['p95_s']:.1f} | | "
         f"{ours['uniform']['p50_s']:.2f} / {ours['uniform']['p95_s']:.2f} |"),
        (f"| (d) mixed traffic, tokens/s | {stock['mixed']['tokens_per_s']:.1f} | "
         f"{raw_mixed_rate:.1f} ({raw_mixed_ran}) | {ours['mixed']['tokens_per_s']:.1f} |"),
        *([f"| (d) short requests p95 (alone: 16 / 32 tokens), s | {stock['mixed']['short_p95_s']:.1f} | "
           + (short_seconds(raw_engine["short_requests"]) if "short_requests" in raw_engine else "")
           + f" | {short_seconds(ours['short_requests'])} |"] if "short_requests" in ours else []),
        (f"| (e) streaming: first token p50 / p95, s | | | "
         f"{ours['streaming']['first_token_p50_s']:.2f} / {ours['streaming']['first_token_p95_s']:.2f} |"),
        f"| (c) peak RSS, GB | {stock['peak_rss_gb']:.2f} | | {ours['peak_rss_gb']:.2f} |",
        f"| (c) cold start, s | {stock['cold_start_s']:.1f} | | {ours['cold_start_s']:.1f} |",
    ]  # fmt: skip
    fidelity = results.get("fidelity")
    agreement = (
        f"Fidelity ({fidelity['what']}): token agreement {fidelity['token_agreement']:.3f}, "
        f"identical sequences {fidelity['identical_sequences']:.2f}.\n"
        if fidelity
        else "Fidelity: not measured in this run (before `bench serving` reported it).\n"
    )
    engine = f" Engine: {config['engine']}." if "engine" in config else ""
    return (
        f"**{config['cpu_class']}**: last full run ({config['when']}), {machine_line(config)}, load average "
        f"{config['load_average_before'][0]:.1f} before it.{engine}\n\n"
        + "\n".join(figures) + "\n\n" + "\n".join(rows) + "\n\n" + agreement
    )  # fmt: skip


def _in_words(variant: str) -> str:
    """An OpenVINO configuration's name (hardware.openvino_variant) for a reader: "f32/q128" ->
    "f32 precision, activations quantized in groups of 128"."""
    from distilgpt2_scoring.hardware import in_words, parse_variant

    precision, group = parse_variant(variant)
    return in_words(f"{precision} precision", group)


def engine_speeds_block(speeds: dict) -> str:
    """A table per measured CPU class, then every class's choice (hardware.py), unmeasured ones included."""
    from distilgpt2_scoring.hardware import CLASS_CHOICES, CPU_CLASSES

    parts = [f"{speeds['what']}.\n"]
    for cpu_class, measured in speeds["classes"].items():
        rows = ["| configuration | batch 1 | batch 8 | batch 16 |", "| --- | --- | --- | --- |"]
        named = {**{n: r for n, r in measured["engines"].items() if n != "openvino"}}
        named |= {f"openvino, {_in_words(v)}": r for v, r in measured.get("openvino_precision", {}).items()}
        if "openvino_precision" not in measured and "openvino" in measured["engines"]:
            named["openvino"] = measured["engines"]["openvino"]
        for name, rates in named.items():
            cells = [f"{rates[b]:.0f}" if b in rates else "" for b in ("1", "8", "16")]
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
        loaded = "; measured under load, so it sizes no timeouts" if measured.get("under_load") else ""
        where = f"{measured['cpus']} vCPUs of an {measured['cpu']}, {measured['when']}"
        parts.append(f"**{cpu_class}** ({where}; {measured['how']}{loaded}):\n\n" + "\n".join(rows) + "\n")
    choices = ["| CPU class | needs | engine, configuration | from |", "| --- | --- | --- | --- |"]
    for cpu_class, choice in CLASS_CHOICES.items():
        needs = ", ".join(sorted(CPU_CLASSES.get(cpu_class, ()))) or "none of these"
        source = (
            f"measured on {choice.measured_on}"
            if choice.measured_on
            else f"unmeasured: {choice.borrowed_from}'s choice"
        )
        choices.append(f"| {cpu_class} | {needs} | {choice.engine}, {_in_words(choice.openvino_variant)} | {source} |")
    parts.append(
        "What the server runs per class (`scoring/distilgpt2_scoring/hardware.py`):\n\n" + "\n".join(choices) + "\n"
    )
    return "\n".join(parts)


def readme_blocks(results: dict, by_class: dict, speeds: dict) -> dict[str, str]:
    """Markdown for each generated block of the README: the headline from the last run, a serving
    table per CPU class, the engine speeds per class."""
    benchmark = "\n".join(serving_tables(run) for run in by_class["classes"].values())
    return {
        "headline": headline(results),
        "benchmark": benchmark,
        "short requests": short_requests(results, speeds),
        "engine speeds": engine_speeds_block(speeds),
    }


def rendered_readme(folder: Path) -> str:
    """README.md with its generated blocks rendered from folder's results files."""
    from ..paths import asset_root
    from . import finetuned, observability
    from .bulk import readme_block

    results, by_class, speeds, bulk, costs, tuned = (json.loads((folder / name).read_text()) for name in RESULTS_FILES)
    blocks = {
        **readme_blocks(results, by_class, speeds),
        "bulk generation": readme_block(bulk),
        "observability cost": f"{observability.table(costs)}, on {machine_line(costs)} ({costs['when']}).\n",
        "finetuned serving": finetuned.readme_block(tuned, machine_line(tuned)),
    }
    return render_readme((asset_root() / "README.md").read_text(), blocks)


def write_readme_figures(folder: Path) -> Path:
    from ..paths import asset_root

    readme = asset_root() / "README.md"
    readme.write_text(rendered_readme(folder))
    print(f"wrote the generated figures of {readme}")
    return readme


def render_readme(readme: str, blocks: dict[str, str]) -> str:
    """The README with each generated block's body replaced (a missing block is an error). A block
    indented under a list item keeps its indent, so the item goes on around it."""
    for name, body in blocks.items():
        readme = _render_block(readme, name, body)
    return readme


def _render_block(readme: str, name: str, body: str) -> str:
    import re

    opening = re.escape(README_BLOCK.split("{name}")[0]) + re.escape(name) + " -->"
    pattern = r"^([ \t]*)" + opening + r"\n.*?<!-- end of generated " + re.escape(name) + " -->"
    if not re.search(pattern, readme, re.S | re.M):
        raise ValueError(f"README.md has no generated block {name!r}")

    def block(match: re.Match) -> str:
        indent = match.group(1)
        return indent + README_BLOCK.format(name=name, body=body).replace("\n", "\n" + indent)

    return re.sub(pattern, block, readme, flags=re.S | re.M)

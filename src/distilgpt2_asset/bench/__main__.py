"""Benchmarks of the distilgpt2-shaped testing model, one job per subcommand:

python -m distilgpt2_asset.bench serving [--quick]  # stock vs ours vs the raw engine -> results.json
python -m distilgpt2_asset.bench engine-speeds      # raw engines, precisions, on this CPU's class -> engine-speeds.json
python -m distilgpt2_asset.bench bulk               # (f) bulk generation vs the raw engine -> generate.json
python -m distilgpt2_asset.bench fidelity           # greedy token agreement, served int8 vs transformers fp32
python -m distilgpt2_asset.bench observability      # (g) observability on vs off -> observability.json
python -m distilgpt2_asset.bench finetuned          # (h) (a) of a finetuned model vs the base -> finetuned.json
python -m distilgpt2_asset.bench readme             # rewrite README.md's generated figures from benchmarks/
python -m distilgpt2_asset.bench soak [...]         # bounded abuse of one server (soak.py's own options)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..commands.evaluate import positive_int
from ..paths import asset_root
from . import bulk, engine_speeds, fidelity, serving, soak
from .machine import benchmark_model, machine
from .report import write_readme_figures


def _model_folder(text: str) -> Path:
    """An MLflow model folder (argparse type): the folder holding MLmodel, or a clear refusal."""
    from distilgpt2_scoring.model_files import ModelFilesError, locate_mlflow_folder

    try:
        return locate_mlflow_folder(Path(text))
    except ModelFilesError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m distilgpt2_asset.bench", description=__doc__.split("\n\n")[0])
    jobs = parser.add_subparsers(dest="job", required=True)
    for name, help_text in (
        ("serving", "the stock deployment vs ours vs the raw engine, (a)-(e) and fidelity"),
        ("engine-speeds", "each engine and precision alone on this CPU, filed under its class"),
        ("bulk", "(f) bulk generation against the raw engine, and the first-start conversion"),
        ("fidelity", "greedy token agreement of the served int8 engine with transformers fp32"),
        ("readme", "rewrite README.md's generated figures from the committed results"),
        ("observability", "(g) our server with observability on vs off, alternating -> observability.json"),
        ("finetuned", "(h) (a) of the testing model finetuned for text generation vs the base -> finetuned.json"),
    ):
        job = jobs.add_parser(name, help=help_text, description=help_text)
        job.add_argument("--output", type=Path, default=asset_root() / "benchmarks", help="folder of the results files")
        if name != "readme":
            job.add_argument(
                "--model", type=_model_folder, help="MLflow model folder (default: the distilgpt2-shaped testing model)"
            )
    serving_job = jobs.choices["serving"]
    serving_job.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 1 repeat, 10 fidelity prompts: checks the script, not the numbers "
        "(writes to a temporary folder unless --output)",
    )
    serving_job.add_argument("--clients", type=positive_int, default=8)
    serving_job.add_argument(
        "--rounds", type=positive_int, default=4, help="requests per client in (b) and (e); twice as many in (d)"
    )
    serving_job.add_argument(
        "--repeats", type=positive_int, default=9, help="requests measured in (a), after one warm-up"
    )
    serving_job.add_argument("--fidelity-prompts", type=positive_int, default=fidelity.PROMPTS)
    jobs.choices["fidelity"].add_argument("--prompts", type=positive_int, default=fidelity.PROMPTS)
    observability_job = jobs.choices["observability"]
    observability_job.add_argument("--clients", type=positive_int, default=8)
    observability_job.add_argument("--rounds", type=positive_int, default=4, help="requests per client in each run")
    observability_job.add_argument("--pairs", type=positive_int, default=5, help="runs of each side, alternating")
    finetuned_job = jobs.choices["finetuned"]
    finetuned_job.add_argument(
        "--finetuned",
        type=_model_folder,
        help="finetuned MLflow folder (default: --model finetuned on the sample text)",
    )
    finetuned_job.add_argument("--repeats", type=positive_int, default=7, help="alternating runs of each measurement")
    jobs.add_parser("soak", help="minutes of good, bad and rude clients on one server", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["soak"]:
        return soak.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.job == "readme":
        write_readme_figures(args.output)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if getattr(args, "quick", False):
        args.rounds, args.repeats, args.fidelity_prompts = 1, 1, 10
        if "--output" not in argv:
            args.output = Path(tempfile.mkdtemp(prefix="bench-quick-"))
    mlflow_dir = args.model or benchmark_model()
    args.output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{args.job}-"))
    if args.job == "serving":
        return serving.run(args, mlflow_dir)
    if args.job == "engine-speeds":
        return engine_speeds.run(mlflow_dir, work, args.output)
    if args.job == "bulk":
        figures = bulk.benchmark(mlflow_dir, work, machine())
        (args.output / "generate.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(bulk.table(figures))
        return 0
    if args.job == "observability":
        from . import observability

        logs = work / "logs"  # the servers' logs, for when a number looks wrong
        logs.mkdir()
        figures = {
            **observability.measure(mlflow_dir, work, logs, args.clients, args.rounds, args.pairs),
            **machine(),
            "when": time.strftime("%Y-%m-%d %H:%M"),
        }
        (args.output / "observability.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(observability.table(figures))
        return 0
    if args.job == "finetuned":
        from . import finetuned

        logs = work / "logs"
        logs.mkdir()
        ft_dir = args.finetuned or finetuned.finetuned_benchmark_model(mlflow_dir)
        figures = {
            **finetuned.measure(mlflow_dir, ft_dir, work, logs, args.repeats),
            **machine(),
            "when": time.strftime("%Y-%m-%d %H:%M"),
        }
        (args.output / "finetuned.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(finetuned.table(figures))
        return 0
    print(json.dumps({**fidelity.measure(mlflow_dir, work, args.prompts), **machine()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

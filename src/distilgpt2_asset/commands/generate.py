"""`generate`: every row of JSON Lines / CSV files through the batch deployment's scoring code, here."""

from __future__ import annotations

from pathlib import Path

from ..bulk_generation import GenerateOptions, generate
from ..evaluation.run import parse_params_argument


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="bulk generation over JSONL/CSV files with the batch endpoint's code, resumable",
        description=(
            "Generate a completion for every row of the input files with the code the batch endpoint runs "
            "(scoring/batch_score.py), many rows at once so the engine runs full batches. JSONL rows are "
            '{"prompt": ..., "id": ..., "params": {...}} (id and params optional); CSV files have a header and '
            "a text column. Output rows (JSON Lines) keep the input's order, file, line and id; rows the service "
            "refuses go to the errors file. Rerun the same command after an interruption to finish the job: "
            "rows already written are skipped. Serving settings come from TEXTGEN_* variables "
            "(e.g. TEXTGEN_MAX_BATCH_SIZE)."
        ),
    )
    p.add_argument(
        "--model", type=Path, required=True, help="model folder (an MLflow folder or a registered model's root)"
    )
    p.add_argument(
        "--input", type=Path, required=True, help="a .jsonl or .csv file, or a folder: every .jsonl and .csv under it"
    )
    p.add_argument("--output", type=Path, required=True, help="output JSON Lines file (appended to when resuming)")
    p.add_argument(
        "--params",
        help='request params for every row, JSON, e.g. \'{"max_new_tokens": 64, "do_sample": false}\'; '
        "a row's own params override them",
    )
    p.add_argument("--text-column", help="the prompt column of CSV files (default: text)")
    p.add_argument("--errors", type=Path, help="errors file (default: OUTPUT's name with .errors.jsonl)")
    p.set_defaults(handler=run)


def run(args) -> int:
    options = GenerateOptions(
        params=parse_params_argument(args.params), text_column=args.text_column, errors=args.errors
    )
    summary = generate(args.model, args.input, args.output, options)
    print(summary.line())
    return 1 if summary.retryable else 0

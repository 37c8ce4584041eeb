"""`validate`: check the whole asset and list every problem; non-zero exit if any. Warnings (SKUs
the card lists that are retired or announced for retirement) are listed too, without failing."""

from __future__ import annotations

from pathlib import Path

from ..spec import load_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("validate", help="Microsoft's asset CI, the SKU rules and every Azure ML YAML")
    p.add_argument("--spec", type=Path, help="spec.yaml to check (default: the asset checkout's)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..validate import validate_asset

    spec = load_spec(args.spec)
    warnings: list = []
    problems = validate_asset(spec, warnings)
    for warning in warnings:
        print(f"warning: {warning}")
    for problem in problems:
        print(problem)
    print(f"{spec.path}: {len(problems)} problem(s)" if problems else f"{spec.path}: valid")
    return 1 if problems else 0

"""`validate`: check the whole asset and list every problem; non-zero exit if any."""

from __future__ import annotations

from pathlib import Path

from ..spec import load_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("validate", help="check spec.yaml, the SKU rules and every Azure ML YAML")
    p.add_argument("--spec", type=Path, help="spec.yaml to check (default: the asset checkout's)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..validate import validate_asset

    spec = load_spec(args.spec)
    problems = validate_asset(spec)
    for problem in problems:
        print(problem)
    print(f"{spec.path}: {len(problems)} problem(s)" if problems else f"{spec.path}: valid")
    return 1 if problems else 0

"""`testing-model`: write a GPT-2 model folder built in code (no download) for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

from ..testing_models import SHAPES


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("testing-model", help="write a tiny trained or distilgpt2-shaped GPT-2 for testing")
    p.add_argument("--shape", choices=sorted(SHAPES), required=True)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..testing_models import make_testing_model

    output = make_testing_model(args.shape, args.output)
    print(f"wrote {args.shape} testing model: {output}")
    return 0

"""`build`: Hugging Face snapshot (hub at the pinned SHA, or a local folder) -> MLflow model."""

from __future__ import annotations

from pathlib import Path

from ..build import default_output
from ..spec import load_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("build", help="build the MLflow model folder from a Hugging Face snapshot")
    p.add_argument("--source", help="hub id or local snapshot folder (default: spec.yaml's huggingface_model_id)")
    p.add_argument("--revision", help="hub commit SHA (default: spec.yaml's SHA property)")
    p.add_argument("--output", type=Path, help="output folder (default: ~/.distilgpt2-asset/models/NAME-VERSION)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..build import build_mlflow_model

    spec = load_spec()
    output = build_mlflow_model(spec, args.source, args.revision, args.output or default_output(spec))
    print(f"built {spec.name} {spec.version}: {output}")
    return 0

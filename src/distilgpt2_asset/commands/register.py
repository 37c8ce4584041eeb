"""`register`: put a built MLflow model into the local MLflow registry under spec.yaml's version."""

from __future__ import annotations

from pathlib import Path

from ..spec import load_spec
from .build import default_output


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("register", help="register the built model in the local MLflow registry")
    p.add_argument("--model", type=Path, help="built MLflow model folder (default: the build command's default output)")
    p.add_argument("--registry-uri", help="MLflow registry URI (default: MLFLOW_TRACKING_URI or ~/.distilgpt2-asset/registry.db)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..registry import LocalRegistry

    spec = load_spec()
    registry = LocalRegistry(args.registry_uri)
    result = registry.register(spec, args.model or default_output(spec))
    print(f"{result.outcome}: {result.name} {result.asset_version} as {result.model_uri} in {registry.uri}")
    return 0

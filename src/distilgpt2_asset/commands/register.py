"""`register`: put a built MLflow model into the local MLflow registry under spec.yaml's version."""

from __future__ import annotations

from pathlib import Path

from ..build import default_output
from ..spec import load_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("register", help="register the built model in the local MLflow registry")
    p.add_argument("--model", type=Path, help="built MLflow model folder (default: the build command's default output)")
    p.add_argument(
        "--registry-uri", help="MLflow registry URI (default: MLFLOW_TRACKING_URI or ~/.distilgpt2-asset/registry.db)"
    )
    p.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="allow a model not built from spec.yaml's hub id at its pinned SHA (testing models)",
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    from distilgpt2_scoring.model_files import locate_mlflow_folder

    from ..provenance import SERVE_ON_PURPOSE, require_pinned
    from ..registry import LocalRegistry

    spec = load_spec()
    model_dir = locate_mlflow_folder(args.model or default_output(spec))
    if not args.allow_unpinned:
        require_pinned(spec, model_dir, on_purpose=f"{SERVE_ON_PURPOSE}; --allow-unpinned registers it anyway")
    registry = LocalRegistry(args.registry_uri)
    result = registry.register(spec, model_dir)
    print(f"{result.outcome}: {result.name} {result.asset_version} as {result.model_uri} in {registry.uri}")
    return 0

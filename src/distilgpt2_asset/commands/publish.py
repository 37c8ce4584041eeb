"""`publish`: validate, then publish the built model under spec.yaml's name and version (a finetuned
model under its own: NAME-finetuned or NAME-text-classification, version from its digest)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..build import default_output
from ..spec import load_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "publish",
        help="validate, then publish the built model to the local MLflow registry or an Azure ML registry",
        description="Same content under an existing version updates its metadata only; different content "
        "is refused (bump `version` in spec.yaml); a new version is uploaded and created.",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="built MLflow model folder "
        "(default: the build command's output, built from the pinned revision if missing)",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--registry", metavar="NAME", help="Azure ML registry to publish to (default: the local MLflow registry)"
    )
    target.add_argument(
        "--registry-uri",
        help="local MLflow registry URI (default: MLFLOW_TRACKING_URI or ~/.distilgpt2-asset/registry.db)",
    )
    p.add_argument(
        "--version",
        dest="expected_version",
        metavar="VERSION",
        help="refuse unless spec.yaml is at this version (CI passes its git tag: v15 or 15)",
    )
    p.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="allow a model not built from spec.yaml's hub id at its pinned SHA (testing models)",
    )
    p.add_argument(
        "--expect-digest",
        metavar="SHA256",
        help="refuse unless the model's content digest (content_sha256) is this one "
        "(CI: the digest of the build its build job verified)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact payload as JSON and stop: no credentials, no network, no registry touched",
    )
    p.set_defaults(handler=run)


# azure.ai.ml warns about its experimental classes on every load and azure.identity logs each
# credential it tries; publish states what matters (or what went wrong) in one line.
QUIET_LOGGERS = ("azure.ai.ml._utils._experimental", "azure.identity")


def run(args) -> int:
    from .. import publish

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    spec = load_spec()
    publish.check_version(spec, args.expected_version)
    # `is not None`: an empty --registry (an unset CI variable) is a bad name, never the local registry.
    target: publish.ModelRegistry
    if args.registry is not None:
        from ..azure_ml.registry import AzureRegistry

        target = publish.AzureTarget(AzureRegistry(args.registry))
    else:
        target = publish.LocalTarget(args.registry_uri)
    result = publish.publish(
        spec, lambda: _model_dir(args, spec), target, args.allow_unpinned, args.expect_digest, args.dry_run
    )
    print(json.dumps(result, indent=2) if isinstance(result, dict) else result)
    return 0


def _model_dir(args, spec) -> Path:
    """--model, else the default build output; built from the pinned revision when missing."""
    from ..errors import AssetError

    if args.model:
        return args.model
    output = default_output(spec)
    if not (output / "MLmodel").is_file():
        if args.dry_run:
            raise AssetError(f"no built model at {output}: run `distilgpt2-asset build` or pass --model DIR")
        from ..build import build_mlflow_model

        build_mlflow_model(spec, None, None, output)
    return output

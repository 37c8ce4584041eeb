"""`publish`: validate, then publish the built model under spec.yaml's name and version (a finetuned
model under its own: NAME-finetuned or NAME-text-classification, version from its digest)."""

from __future__ import annotations

import dataclasses
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
        help="built MLflow model folder (default: the build command's output, built from the pinned revision if missing)",
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
    from ..finetune import finetuned_release
    from ..model_scan import scan_model

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    spec = load_spec()
    publish.check_version(spec, args.expected_version)
    # `is not None`: an empty --registry (an unset CI variable) is a bad name, never the local registry.
    registry = _azure_registry(args.registry) if args.registry is not None else None
    publish.refuse_invalid(spec)
    model_dir = _model_dir(args, spec)
    scan = scan_model(model_dir)  # first: it names every unsafe file, links included, without following them
    scan.require_clean("publish")
    release = finetuned_release(spec, model_dir, args.allow_unpinned)  # a finetune: under a name of its own
    release_spec = release[0] if release else spec
    folder, manifest = publish.verified_model(model_dir, release_spec, args.allow_unpinned or release is not None)
    payload = publish.build_payload(release_spec, folder, manifest, publish.git_commit(spec.path.parent), scan)
    if release is not None:
        payload = dataclasses.replace(payload, properties={**payload.properties, **release[1]})
    spec = release_spec
    publish.check_digest(payload, args.expect_digest)
    if args.dry_run:
        print(json.dumps(_dry_run(payload, registry, args.registry_uri), indent=2))
        return 0
    if registry is not None:
        outcome = publish.publish_azure(payload, registry)
    else:
        from ..registry import LocalRegistry

        outcome = publish.publish_local(payload, spec, LocalRegistry(args.registry_uri))
    print(outcome)
    return 0


def _azure_registry(name: str):
    from ..azure.registry import AzureRegistry

    return AzureRegistry(name)


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


def _dry_run(payload, registry, registry_uri: str | None) -> dict:
    if registry is None:
        from ..registry import registry_uri as local_registry_uri

        return {"registry": local_registry_uri(registry_uri), **payload.summary()}
    from ..azure.registry import UPLOAD_AS, model_entity
    from ..publish import Payload

    # Read back from the azure.ai.ml Model entity that a real publish sends.
    entity = model_entity(payload, payload.path)
    sent = Payload(
        name=entity.name,
        version=entity.version,
        type=entity.type,
        path=Path(entity.path),
        description=entity.description,
        description_source=payload.description_source,
        tags=entity.tags,
        properties=entity.properties,
    )
    return {
        "registry": f"azureml://registries/{registry.name}",
        "model_uri": registry.model_uri(payload.name, payload.version),
        "upload_as": UPLOAD_AS,
        **sent.summary(),
    }

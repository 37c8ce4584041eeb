"""`deploy`: the online endpoint + deployment of jobs/deploy/ through the Azure ML SDK, with its
autoscale setting (--autoscale MIN:MAX, azure-mgmt-monitor), or the batch endpoint (--batch).

Same YAML and the same --set overrides as `az ml online-deployment create --set ...` (`az ml
batch-deployment create` with --batch); every refusal happens before any Azure call. --dry-run
prints the requests as JSON and needs no credentials, no workspace and no network.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..azure_ml.deploy import MICROSOFT_REGISTRY, model_origin, parse_overrides
from ..azure_ml.workspace import SETTINGS
from ..errors import AssetError
from ..spec import load_spec
from .evaluate import positive_int


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="deploy to an Azure ML managed online endpoint (with autoscale) or a batch endpoint "
        "(az ml's YAML and --set), or print the requests",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        default=[],
        help="override a deployment field as az ml's --set does, e.g. instance_type=Standard_F8s_v2 "
        "request_settings.request_timeout_ms=120000 environment_variables.TEXTGEN_ENGINE=transformers",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the REST requests the SDK would send; no credentials or network"
    )
    p.add_argument("--endpoint-name", help="endpoint to create or reuse (default: the YAML's; unique per Azure region)")
    p.add_argument("--deployment-name", help="deployment name (default: the YAML's, 'blue')")
    p.add_argument(
        "--model-registry",
        metavar="azureml|NAME",
        help=f"where spec.yaml's version comes from: {MICROSOFT_REGISTRY} (the default, as the model card shows) "
        "serves the version Microsoft publishes; NAME serves your own, as `distilgpt2-asset publish --registry NAME` "
        "uploaded it (--set model=azureml:NAME:VERSION instead: a workspace model)",
    )
    p.add_argument(
        "--deployment-file",
        type=Path,
        help="deployment YAML, relative to the asset root "
        "(default: jobs/deploy/online-deployment.yml; "
        "the no-code MLflow one: jobs/deploy/online-deployment-mlflow.yml)",
    )
    p.add_argument("--endpoint-file", type=Path, help="endpoint YAML (default: jobs/deploy/online-endpoint.yml)")
    p.add_argument(
        "--location", help="dry run only: the workspace's Azure region shown in the bodies (the SDK looks it up)"
    )
    p.add_argument(
        "--autoscale",
        metavar="MIN:MAX",
        nargs="?",
        const="",
        help="also create an Azure Monitor autoscale setting for the deployment with the rules of "
        "jobs/deploy/autoscale.yml, MIN to MAX instances (alone: the profile's capacity); "
        "checked against measurements and the quota hint first",
    )
    p.add_argument("--autoscale-file", type=Path, help="autoscale profile (default: jobs/deploy/autoscale.yml)")
    p.add_argument(
        "--quota-cores",
        type=positive_int,
        metavar="N",
        help="your subscription's dedicated-core quota for the instance "
        "type's VM family (default: the lowest documented default, as autoscale.yml records)",
    )
    p.add_argument(
        "--batch",
        action="store_true",
        help="the batch endpoint instead: jobs/deploy/batch-cluster.yml, batch-endpoint.yml and batch-deployment.yml "
        "(--set applies to the batch deployment)",
    )
    p.add_argument(
        "--app-insights",
        action="store_true",
        help="app_insights_enabled: azmlinfsrv's request telemetry and our metrics (textgen.*) as custom metrics "
        "in the workspace's Application Insights (README: Operate)",
    )
    p.add_argument(
        "--collect-data",
        nargs="?",
        const=1.0,
        type=share,
        metavar="RATE",
        help="data_collector with model_inputs and model_outputs, and TEXTGEN_COLLECT_DATA=true: prompts and "
        "answers go to the workspace's blob storage for Azure ML model monitoring; RATE (0 to 1, default 1) is "
        "the share of requests sent, each with both its input and its output (TEXTGEN_COLLECT_DATA_RATE)",
    )
    p.add_argument(
        "--alerts",
        action="store_true",
        help="also create the Azure Monitor metric alerts of jobs/monitor/alerts.yml (p95 latency, 5xx, 503)",
    )
    for field, (flag, env) in SETTINGS.items():
        p.add_argument(flag, dest=field, help=f"default: ${env}")
    p.set_defaults(handler=run)


def registry_properties(registry: str, name: str, version: str) -> dict | None:
    """A registry version's properties, read through the publish path's registry client (sign-in as for publish)."""
    from ..azure_ml.registry import AzureRegistry

    model = AzureRegistry(registry).get(name, version)
    return None if model is None else dict(model.properties or {})


def share(text: str) -> float:
    """A rate above 0 and at most 1 (argparse names the flag in its error)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not above 0 and at most 1")
    return value


def observability_overrides(args) -> list[dict[str, str]]:
    """--app-insights and --collect-data as the deployment fields they set (as --set would)."""
    overrides = [{"app_insights_enabled": "true"}] if args.app_insights else []
    if args.collect_data is not None:
        overrides += [
            {f"data_collector.collections.{name}.enabled": "true"} for name in ("model_inputs", "model_outputs")
        ]
        overrides += [
            {"environment_variables.TEXTGEN_COLLECT_DATA": "true"},
            # Sampled by our exporter, not by data_collector.sampling_rate (collector.py says why).
            {"environment_variables.TEXTGEN_COLLECT_DATA_RATE": str(args.collect_data)},
        ]
    return overrides


def run(args) -> int:
    from ..azure_ml.workspace import resolve_workspace

    spec = load_spec()
    overrides = parse_overrides(args.overrides) + observability_overrides(args)
    model_set = any("model" in override for override in overrides)
    if model_set and args.model_registry:
        raise AssetError("--model-registry and --set model=... both choose the model: give one of them")
    registry = None if model_set else (args.model_registry or MICROSOFT_REGISTRY)
    flags = {field: getattr(args, field) for field in SETTINGS}
    workspace = resolve_workspace(flags, required=not args.dry_run)
    # stderr: a dry run's stdout is the JSON of the requests alone
    origin = model_origin(registry) if registry else "as --set model= names it"
    return (_batch if args.batch else _online)(args, spec, overrides, registry, workspace, origin)


def _online(args, spec, overrides, registry, workspace, origin) -> int:
    from ..azure_ml.alerts import alert_requests, plan_alerts, submit_alerts
    from ..azure_ml.autoscale import dry_run_request, plan_autoscale, submit_autoscale
    from ..azure_ml.deploy import dry_run_requests, pin_content_digest, plan_deployment, submit
    from ..azure_ml.workspace import ml_client, monitor_client

    autoscaled = args.autoscale is not None
    if (args.autoscale_file or args.quota_cores) and not autoscaled:
        raise AssetError("--autoscale-file and --quota-cores go with --autoscale [MIN:MAX]")
    plan = plan_deployment(
        spec,
        overrides,
        endpoint_file=args.endpoint_file,
        deployment_file=args.deployment_file,
        endpoint_name=args.endpoint_name,
        deployment_name=args.deployment_name,
        model_registry=registry,
    )
    scaling = (
        plan_autoscale(spec, plan, args.autoscale or None, args.quota_cores, args.autoscale_file)
        if autoscaled
        else None
    )
    _tell(f"model: {plan.deployment.model}, {origin}", plan.notices)
    if scaling is not None:
        print(
            f"autoscale: {scaling.minimum} to {scaling.maximum} instances; {scaling.floors}; "
            f"quota hint: {scaling.quota_hint}",
            file=sys.stderr,
        )
    alerts = plan_alerts(spec, plan.endpoint.name) if args.alerts else None
    if args.dry_run:
        requests = dry_run_requests(plan, workspace, args.location)
        if scaling is not None:
            requests.append(dry_run_request(scaling, workspace, args.location))
        if alerts is not None:
            requests += alert_requests(alerts, workspace)
        print(json.dumps(requests, indent=2))
        return 0
    pin_content_digest(plan, registry_properties)
    endpoint = submit(plan, ml_client(workspace), where=f"Azure ML workspace {workspace.workspace_name!r}")
    if scaling is not None:
        submit_autoscale(scaling, monitor_client(workspace), workspace, endpoint.location)
    if alerts is not None:
        submit_alerts(alerts, monitor_client(workspace), workspace)
    print(
        f"deployed {spec.name} {spec.version} ({origin}) to {plan.endpoint.name}/{plan.deployment.name}; try:\n"
        f"  az ml online-endpoint invoke --name {plan.endpoint.name} --request-file jobs/deploy/sample-request.json"
    )
    return 0


def _batch(args, spec, overrides, registry, workspace, origin) -> int:
    from ..azure_ml.batch import dry_run_requests, plan_batch, submit_batch
    from ..azure_ml.deploy import pin_content_digest
    from ..azure_ml.workspace import ml_client

    online_only = {"--autoscale": args.autoscale, "--autoscale-file": args.autoscale_file,
                   "--quota-cores": args.quota_cores,
                   "--deployment-file": args.deployment_file, "--endpoint-file": args.endpoint_file,
                   "--app-insights": args.app_insights or None, "--collect-data": args.collect_data,
                   "--alerts": args.alerts or None}  # fmt: skip
    given = [flag for flag, value in online_only.items() if value is not None]
    if given:
        raise AssetError(
            f"{', '.join(given)}: online deployments only; "
            "a batch endpoint scales with its cluster (batch-cluster.yml max_instances)"
        )
    plan = plan_batch(
        spec, overrides, endpoint_name=args.endpoint_name, deployment_name=args.deployment_name, model_registry=registry
    )
    _tell(f"model: {plan.deployment.model}, {origin}", plan.notices)
    if args.dry_run:
        print(json.dumps(dry_run_requests(plan, workspace, args.location), indent=2))
        return 0
    pin_content_digest(plan, registry_properties)
    submit_batch(plan, ml_client(workspace), where=f"Azure ML workspace {workspace.workspace_name!r}")
    print(
        f"deployed {spec.name} {spec.version} ({origin}) to batch endpoint "
        f"{plan.endpoint.name}/{plan.deployment.name}; try:\n"
        f"  az ml batch-endpoint invoke --name {plan.endpoint.name} "
        "--input jobs/deploy/batch-sample --input-type uri_folder"
    )
    return 0


def _tell(what: str, notices: list[str]) -> None:
    print(what, file=sys.stderr)
    for notice in notices:
        print(f"note: {notice}", file=sys.stderr)

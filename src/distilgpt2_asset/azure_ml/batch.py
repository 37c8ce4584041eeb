"""Deploy the asset to an Azure ML batch endpoint from jobs/deploy/batch-*.yml.

load (the real azure.ai.ml loaders: the cluster, the endpoint, the batch deployment; --set
overrides applied to the deployment as az ml applies them)
  -> check: spec.yaml's model, the cluster's size against the inference allow-list, the scoring
     script, the batch settings against the serving settings, azure.ai.ml's own pre-submit checks
  -> dry run: every request the SDK would send (no credentials, no network)
     or submit: cluster (unless it exists), endpoint (unless it exists), deployment, then make it
     the endpoint's default, through MLClient.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import AssetError
from ..spec import AssetSpec
from . import sdk
from .checks import check_code, check_instance_type, check_model, check_names
from .deploy import DEPLOY_DIR, deployment_overrides_for, load, put_request, uploads
from .profile import serving_settings
from .workspace import PLACEHOLDER_WORKSPACE, Workspace

BATCH_ENDPOINT_FILE = DEPLOY_DIR / "batch-endpoint.yml"
BATCH_DEPLOYMENT_FILE = DEPLOY_DIR / "batch-deployment.yml"
BATCH_CLUSTER_FILE = DEPLOY_DIR / "batch-cluster.yml"
OUTPUT_ACTION = "append_row"  # the rows are the product: summary_only would keep none of them


@dataclass
class BatchPlan:
    cluster: Any  # AmlCompute
    endpoint: Any  # BatchEndpoint
    deployment: Any  # ModelBatchDeployment
    notices: list[str]

    @property
    def variables(self) -> dict[str, str]:
        """The deployment's environment variables, which a batch deployment keeps in its settings."""
        return dict(self.deployment.settings.environment_variables or {})

    @variables.setter
    def variables(self, values: dict[str, str]) -> None:
        self.deployment.settings.environment_variables = values


def plan_batch(
    spec: AssetSpec,
    overrides: list[dict[str, str]] | None = None,
    *,
    endpoint_name: str | None = None,
    deployment_name: str | None = None,
    model_registry: str | None = None,
) -> BatchPlan:
    """The three YAMLs through the real loaders, overrides applied to the deployment, everything checked.
    model_registry: where spec.yaml's version comes from; None: the deployment YAML's model."""
    from azure.ai.ml import load_batch_deployment, load_batch_endpoint, load_compute

    from ..validate import presubmit_problems

    root = spec.path.parent
    deployment_path = root / BATCH_DEPLOYMENT_FILE
    named = deployment_overrides_for(spec, overrides, model_registry, endpoint_name, deployment_name)
    # A model deployment: `type: model` makes the public loader return azure.ai.ml's ModelBatchDeployment
    # (its base BatchDeployment is deprecated) with the same REST body; the file stays in the form az ml reads.
    deployment = load(load_batch_deployment, deployment_path, [*named, {"type": "model"}])
    endpoint = load(load_batch_endpoint, root / BATCH_ENDPOINT_FILE, [{"name": deployment.endpoint_name}])
    cluster = load(load_compute, root / BATCH_CLUSTER_FILE, [])

    check_names(endpoint, deployment)
    check_model(spec, deployment)
    notices = check_instance_type(spec, cluster.size, f"{BATCH_CLUSTER_FILE} size")
    _check_cluster(cluster, deployment)
    check_code(deployment)
    _check_settings(deployment)
    problems = presubmit_problems(deployment, deployment_path)
    if problems:
        raise AssetError(problems[0].message)
    return BatchPlan(cluster, endpoint, deployment, notices)


def _check_cluster(cluster: Any, deployment: Any) -> None:
    compute = str(deployment.compute or "").removeprefix("azureml:")
    if compute != cluster.name:
        raise AssetError(
            f"compute {compute or None!r} is not the cluster {BATCH_CLUSTER_FILE} creates ({cluster.name}); "
            "name that one"
        )
    count = getattr(deployment.resources, "instance_count", None) or 1
    if not 1 <= count <= cluster.max_instances:
        raise AssetError(
            f"resources.instance_count {count}: the cluster {cluster.name} has 1 to {cluster.max_instances} instances"
        )


def _check_settings(deployment: Any) -> None:
    """The batch settings against the scoring's: append_row output, a row deadline within the mini-batch
    timeout, valid TEXTGEN_* settings and job params every row can be sent with."""
    from distilgpt2_scoring.batch import parse_job_params
    from distilgpt2_scoring.errors import InvalidInput
    from distilgpt2_scoring.params import GenerationParams, parse_params

    if deployment.output_action != OUTPUT_ACTION:
        raise AssetError(f"output_action is {deployment.output_action}; batch scoring's rows need {OUTPUT_ACTION}")
    variables = {str(k): str(v) for k, v in (deployment.environment_variables or {}).items()}
    serving = serving_settings(variables)
    timeout_s = deployment.retry_settings.timeout
    if serving.request_timeout_ms >= timeout_s * 1000:
        raise AssetError(
            f"environment_variables.TEXTGEN_REQUEST_TIMEOUT_MS {serving.request_timeout_ms} (a row's deadline) "
            "must be below "
            f"retry_settings.timeout ({timeout_s} s per mini-batch), or Azure retries the mini-batch first"
        )
    try:
        parse_params(
            parse_job_params(variables.get("BATCH_PARAMS"), "BATCH_PARAMS"),
            GenerationParams(),
            serving.max_new_tokens,
            "BATCH_PARAMS",
        )
    except (ValueError, InvalidInput) as exc:
        raise AssetError(f"environment_variables: {exc}") from None


# dry run: what the SDK would send ---------------------------------------------------------------


def dry_run_requests(plan: BatchPlan, workspace: Workspace | None, location: str | None) -> list[dict]:
    """Every request `submit` makes through the SDK, in order, with the bodies it would send."""
    workspace = workspace or PLACEHOLDER_WORKSPACE
    location = location or "{workspaceLocation}"
    cluster = copy.deepcopy(plan.cluster)
    cluster.location = location  # the SDK gives a cluster without one the workspace's
    cluster_url = f"{workspace.arm_prefix}/computes/{cluster.name}"
    requests = [
        put_request(
            "create compute cluster (skipped when it exists)", cluster_url, sdk.COMPUTE_API, sdk.rest_body(cluster)
        )
    ]
    endpoint_url = f"{workspace.arm_prefix}/batchEndpoints/{plan.endpoint.name}"
    endpoint_body = sdk.rest_body(plan.endpoint, location)
    requests.append(
        put_request(
            "create batch endpoint (skipped when it exists)", endpoint_url, sdk.BATCH_ENDPOINTS_API, endpoint_body
        )
    )
    deployment = copy.deepcopy(plan.deployment)
    requests += uploads(deployment, workspace)
    deployment.compute = cluster_url  # the SDK sends the cluster's ARM id
    deployment_url = f"{endpoint_url}/deployments/{deployment.name}"
    requests.append(
        put_request(
            "create batch deployment", deployment_url, sdk.BATCH_DEPLOYMENTS_API, sdk.rest_body(deployment, location)
        )
    )
    default = _with_default(plan.endpoint, deployment.name)
    requests.append(
        put_request(
            "make it the default deployment", endpoint_url, sdk.BATCH_ENDPOINTS_API, sdk.rest_body(default, location)
        )
    )
    return requests


def _with_default(endpoint: Any, deployment_name: str) -> Any:
    routed = copy.deepcopy(endpoint)
    routed.defaults = {"deployment_name": deployment_name}
    return routed


# submit -----------------------------------------------------------------------------------------


def submit_batch(plan: BatchPlan, client: Any, log: Callable[[str], None] = print, where: str = "Azure ML") -> Any:
    """Create the cluster and the endpoint unless they exist (an existing one is kept as it is), the
    deployment, then make it the endpoint's default; the requests are those of dry_run_requests."""
    from azure.core.exceptions import ResourceNotFoundError

    from .failures import WORKSPACE_ROLE, azure_errors

    endpoints, cluster = client.batch_endpoints, plan.cluster
    with azure_errors(where, WORKSPACE_ROLE):
        try:
            client.compute.get(cluster.name)
            log(f"compute cluster {cluster.name} exists; using it")
        except ResourceNotFoundError:
            log(
                f"creating compute cluster {cluster.name} "
                f"({cluster.min_instances} to {cluster.max_instances} x {cluster.size})"
            )
            client.compute.begin_create_or_update(cluster).result()
        try:
            endpoint = endpoints.get(plan.endpoint.name)
            log(f"batch endpoint {plan.endpoint.name} exists; adding deployment {plan.deployment.name}")
        except ResourceNotFoundError:
            log(f"creating batch endpoint {plan.endpoint.name}")
            endpoints.begin_create_or_update(plan.endpoint).result()
            endpoint = plan.endpoint
        log(f"creating batch deployment {plan.deployment.name}; this takes minutes")
        client.batch_deployments.begin_create_or_update(plan.deployment).result()
        log(f"making {plan.deployment.name} the default deployment of {plan.endpoint.name}")
        return endpoints.begin_create_or_update(_with_default(endpoint, plan.deployment.name)).result()

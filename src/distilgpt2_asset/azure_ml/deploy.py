"""Deploy the asset to an Azure ML managed online endpoint from jobs/deploy/*.yml.

load  (the real azure.ai.ml loaders; --set overrides applied exactly as `az ml ... --set` does)
  -> check against spec.yaml and the serving limits: an AssetError before any Azure call
  -> dry run: the requests the SDK would send (REST bodies, no credentials, no network)
     or submit: endpoint, deployment, then all traffic to the deployment, through MLClient.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import AssetError
from ..spec import AssetSpec
from . import sdk
from .checks import (
    MODEL_REFERENCE,
    check_code,
    check_compute,
    check_model,
    check_names,
    check_requests,
    model_reference,
    write_deadline,
)
from .failures import one_line
from .profile import ServingProfile, serving_profile
from .workspace import PLACEHOLDER_WORKSPACE, Workspace

DEPLOY_DIR = Path("jobs") / "deploy"
ENDPOINT_FILE = DEPLOY_DIR / "online-endpoint.yml"
DEPLOYMENT_FILE = DEPLOY_DIR / "online-deployment.yml"
# Microsoft's public registry: the version the model card describes, made by Azure's own conversion.
MICROSOFT_REGISTRY = "azureml"


def model_origin(registry: str) -> str:
    """What a deployment from this registry serves, in words."""
    if registry == MICROSOFT_REGISTRY:
        return f"the version Microsoft publishes (registry {MICROSOFT_REGISTRY}, as the model card shows)"
    return f"your own version in registry {registry} (what `distilgpt2-asset publish --registry {registry}` uploaded)"


def parse_overrides(pairs: list[str] | None) -> list[dict[str, str]]:
    """`key=value` (dotted keys reach nested fields) -> params_override, as the az ml CLI's --set."""
    overrides = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AssetError(f"--set {pair!r}: expected key=value, e.g. instance_type=Standard_F8s_v2")
        overrides.append({key.strip(): value})
    return overrides


# plan ------------------------------------------------------------------------------------------


@dataclass
class DeploymentPlan:
    endpoint: Any  # ManagedOnlineEndpoint
    deployment: Any  # ManagedOnlineDeployment
    profile: ServingProfile
    notices: list[str]  # worth knowing, not a refusal (e.g. a retirement announced for later)

    @property
    def variables(self) -> dict[str, str]:
        """The deployment's environment variables (a batch plan keeps them in its settings)."""
        return dict(self.deployment.environment_variables or {})

    @variables.setter
    def variables(self, values: dict[str, str]) -> None:
        self.deployment.environment_variables = values


PropertiesOf = Callable[[str, str, str], dict | None]


class PinnablePlan(Protocol):
    """What pin_content_digest needs of a plan, online (DeploymentPlan) or batch (batch.BatchPlan)."""

    deployment: Any
    variables: dict[str, str]


def plan_deployment(
    spec: AssetSpec,
    overrides: list[dict[str, str]] | None = None,
    *,
    endpoint_file: Path | None = None,
    deployment_file: Path | None = None,
    endpoint_name: str | None = None,
    deployment_name: str | None = None,
    model_registry: str | None = None,
) -> DeploymentPlan:
    """Load both YAMLs with the real loaders, apply overrides and spec defaults, check everything.
    model_registry: where spec.yaml's version comes from (MICROSOFT_REGISTRY or the user's own);
    None: the deployment YAML's model."""
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    root = spec.path.parent
    deployment_overrides = deployment_overrides_for(spec, overrides, model_registry, endpoint_name, deployment_name)
    deployment = load(load_online_deployment, root / (deployment_file or DEPLOYMENT_FILE), deployment_overrides)
    # The endpoint is the one the deployment names, so --set endpoint_name=... moves both.
    try:
        endpoint_path = root / (endpoint_file or ENDPOINT_FILE)
        endpoint = load(load_online_endpoint, endpoint_path, [{"name": deployment.endpoint_name}])
    except AssetError as exc:
        if "name:" not in str(exc):
            raise
        raise AssetError(
            f"endpoint name {deployment.endpoint_name!r}: 3-32 letters, digits and hyphens, starting with a letter"
        ) from None

    check_names(endpoint, deployment)
    check_model(spec, deployment)
    notices = check_compute(spec, deployment)
    check_code(deployment)
    write_deadline(deployment, deployment_overrides)
    profile = serving_profile(spec, deployment)
    check_requests(profile, deployment)
    return DeploymentPlan(endpoint, deployment, profile, notices)


def deployment_overrides_for(
    spec: AssetSpec,
    overrides: list[dict[str, str]] | None,
    model_registry: str | None,
    endpoint_name: str | None,
    deployment_name: str | None,
) -> list[dict[str, str]]:
    """--set overrides, then the model of a registry, the endpoint and the deployment name (online or batch)."""
    named = list(overrides or [])
    if model_registry is not None:
        from .registry import check_registry_name

        named.append({"model": model_reference(spec, check_registry_name(model_registry))})
    if endpoint_name:
        named.append({"endpoint_name": endpoint_name})
    if deployment_name:
        named.append({"name": deployment_name})
    return named


def load(loader: Callable[..., Any], path: Path, overrides: list[dict[str, str]]) -> Any:
    if not path.is_file():
        raise AssetError(f"{path}: no such file")
    try:
        return loader(path, params_override=overrides)
    except Exception as exc:
        raise AssetError(f"{path}: {one_line(exc)}") from None


# dry run: what the SDK would send ---------------------------------------------------------------


def put_request(step: str, url: str, api: str, body: dict) -> dict:
    return {"step": step, "method": "PUT", "url": f"{url}?api-version={sdk.api_version(api)}", "body": body}


def dry_run_requests(plan: DeploymentPlan, workspace: Workspace | None, location: str | None) -> list[dict]:
    """Every request `submit` makes through the SDK, in order, with the bodies it would send.

    The SDK uploads scoring/ and names the resulting code version only at run time; that one id is
    shown as a placeholder, with the content hash the SDK computes for the upload.
    """
    workspace = workspace or PLACEHOLDER_WORKSPACE
    location = location or "{workspaceLocation}"
    endpoint_url = f"{workspace.arm_prefix}/onlineEndpoints/{plan.endpoint.name}"
    endpoint_body = sdk.rest_body(plan.endpoint, location)
    requests = [put_request("create endpoint (skipped when it exists)", endpoint_url, sdk.ENDPOINTS_API, endpoint_body)]
    deployment = copy.deepcopy(plan.deployment)
    requests += uploads(deployment, workspace)
    deployment_url = f"{endpoint_url}/deployments/{deployment.name}"
    deployment_body = sdk.rest_body(deployment, location)
    requests.append(put_request("create deployment", deployment_url, sdk.DEPLOYMENTS_API, deployment_body))
    routed = copy.deepcopy(plan.endpoint)
    routed.traffic = {deployment.name: 100}
    routed_body = sdk.rest_body(routed, location)
    requests.append(put_request("route all traffic", endpoint_url, sdk.ENDPOINTS_API, routed_body))
    return requests


def uploads(deployment: Any, workspace: Workspace) -> list[dict]:
    """What the SDK sends before a deployment with local code and an inline environment: the code
    upload and the environment's anonymous version. Both are replaced in `deployment` (a copy) by
    what its own request then carries."""
    requests = []
    if deployment.code_configuration is not None:
        code = Path(deployment.base_path, deployment.code_configuration.code).resolve()
        requests.append({"step": "upload code", "source": str(code), "hash_sha256": sdk.code_upload_hash(code)})
        deployment.code_configuration.code = f"{{code version created from the upload of {code}}}"
    environment = deployment.environment
    if environment is not None and not isinstance(environment, str):  # inline: an anonymous version
        env_url = f"{workspace.arm_prefix}/environments/{environment.name}/versions/{environment.version}"
        requests.append(put_request("create environment", env_url, sdk.DEPLOYMENTS_API, sdk.rest_body(environment)))
        deployment.environment = env_url  # the SDK sends the created version's plain ARM id
    return requests


# pinning the model's content ------------------------------------------------------------------------

PIN_VARIABLE = "TEXTGEN_EXPECTED_CONTENT_SHA256"


def content_pin(
    model: str | None, scored_by_our_code: bool, variables: Mapping[str, str], properties_of: PropertiesOf
) -> tuple[dict[str, str], str]:
    """The deployment's environment variables with the content pin its registry version records
    (publish records content_sha256), so that the server refuses any other files, and the line that
    says what was done ('' for nothing to say). properties_of(registry, name, version) -> the version's
    properties (None: no such version). A pin given explicitly stays; nothing is changed in place."""
    from ..publish import CONTENT_PROPERTY

    variables = dict(variables or {})
    match = MODEL_REFERENCE.match(model or "")
    if not scored_by_our_code or variables.get(PIN_VARIABLE) or not (match and match["registry"]):
        return variables, ""
    registry, name, version = match["registry"], match["name"], match["version"]
    digest = (properties_of(registry, name, version) or {}).get(CONTENT_PROPERTY)
    if digest:
        said = f"pinned to content sha256 {digest}, as registry {registry} records it: other files will not start"
        return {**variables, PIN_VARIABLE: digest}, said
    return variables, (
        f"registry {registry} records no content digest for {name} {version} (Microsoft's versions do not): the "
        f"server logs the digest it serves at start; pin it with --set environment_variables.{PIN_VARIABLE}=<digest>"
    )


def pin_content_digest(plan: PinnablePlan, properties_of: PropertiesOf, log: Callable[[str], None] = print) -> None:
    """content_pin applied to a plan, online or batch (each keeps its variables where its kind does)."""
    deployment = plan.deployment
    plan.variables, said = content_pin(
        deployment.model, deployment.code_configuration is not None, plan.variables, properties_of
    )
    if said:
        log(said)


# submit -----------------------------------------------------------------------------------------


def submit(plan: DeploymentPlan, client: Any, log: Callable[[str], None] = print, where: str = "Azure ML") -> Any:
    """Create the endpoint (unless it exists), the deployment, then route all traffic to it.

    The requests are those of `dry_run_requests`; an endpoint that already exists is kept as Azure
    returns it (its auth mode, tags, other deployments) and only its traffic changes. where: the
    workspace, as failures name it.
    """
    from azure.core.exceptions import ResourceNotFoundError

    from .failures import WORKSPACE_ROLE, azure_errors

    endpoints, deployments = client.online_endpoints, client.online_deployments
    name, deployment_name = plan.endpoint.name, plan.deployment.name
    with azure_errors(where, WORKSPACE_ROLE):
        try:
            endpoint = endpoints.get(name)
            log(f"endpoint {name} exists; adding deployment {deployment_name}")
        except ResourceNotFoundError:
            log(f"creating endpoint {name}")
            endpoints.begin_create_or_update(plan.endpoint).result()
            endpoint = copy.deepcopy(plan.endpoint)
        size = f"{plan.deployment.instance_count} x {plan.deployment.instance_type}"
        log(f"creating deployment {deployment_name} ({size}); this takes minutes")
        deployments.begin_create_or_update(plan.deployment).result()
        endpoint.traffic = {deployment_name: 100}
        log(f"routing all traffic of {name} to {deployment_name}")
        return endpoints.begin_create_or_update(endpoint).result()

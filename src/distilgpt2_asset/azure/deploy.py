"""Deploy the asset to an Azure ML managed online endpoint from jobs/deploy/*.yml.

load  (the real azure.ai.ml loaders; --set overrides applied exactly as `az ml ... --set` does)
  -> check against spec.yaml and the serving limits: an AssetError before any Azure call
  -> dry run: the requests the SDK would send (REST bodies, no credentials, no network)
     or submit: endpoint, deployment, then all traffic to the deployment, through MLClient.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .workspace import PLACEHOLDER_WORKSPACE, Workspace
from ..errors import AssetError
from ..sku_lifecycle import allow_listed, refusal, sku_status
from ..skus import canonical_sku, meets, sku_catalog
from ..spec import AssetSpec

DEPLOY_DIR = Path("jobs") / "deploy"
ENDPOINT_FILE = DEPLOY_DIR / "online-endpoint.yml"
DEPLOYMENT_FILE = DEPLOY_DIR / "online-deployment.yml"

# Raw decode throughput of each engine on a distilgpt2-shaped model, 2 vCPUs, per CPU class, written by
# `python -m distilgpt2_asset.bench --engine-speeds`. 2 vCPUs is inference-min-sku-spec's floor.
ENGINE_SPEEDS_FILE = Path("benchmarks") / "engine-speeds.json"
TIMEOUT_HEADROOM = 1.5  # prompt prefill, queueing for a batch slot, a noisy neighbour
MAX_REQUEST_TIMEOUT_MS = 180_000  # Azure's ceiling for request_settings.request_timeout_ms
AZURE_DEFAULT_TIMEOUT_MS = 5_000  # what Azure uses when request_settings leaves it out
NO_CODE_ENGINE = "transformers"  # Azure's no-code MLflow scoring runs the transformers pipeline
# The scoring's request deadline: written from request_settings.request_timeout_ms, so the two agree.
DEADLINE_VARIABLE = "TEXTGEN_REQUEST_TIMEOUT_MS"

# Microsoft's public registry: the version the model card describes, made by Azure's own conversion.
MICROSOFT_REGISTRY = "azureml"

MODEL_REFERENCE = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$"
    r"|^(?:azureml:)?(?P<ws_name>[^:/]+):(?P<ws_version>[^:/]+)$"  # the loader drops "azureml:"
)


def model_reference(spec: AssetSpec, registry: str) -> str:
    """spec.yaml's name and version in a registry, as a deployment's `model`."""
    return f"azureml://registries/{registry}/models/{spec.name}/versions/{spec.version}"


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


# serving profile -----------------------------------------------------------------------------


def lowest_measured_speed(spec: AssetSpec, engine: str, batch: int) -> tuple[float, str]:
    """(tokens/s summed over `batch` sequences, where it was measured): the lowest figure over the CPU
    classes an allowed SKU may land on (D*a_v4 run on AVX2-only AMD EPYC; F*s_v2 on AVX-512 Intel). A
    class where this engine was not measured counts with the slowest engine that was measured there."""
    path = spec.path.parent / ENGINE_SPEEDS_FILE
    try:
        classes = json.loads(path.read_text())["classes"]
    except (OSError, ValueError, KeyError) as exc:
        raise AssetError(f"{path}: cannot read the measured engine speeds ({exc}); run python -m distilgpt2_asset.bench --engine-speeds") from None
    figures = []
    for cpu_class, engines in classes.items():
        at_batch = {name: rates[str(batch)] for name, rates in engines.items() if str(batch) in rates}
        if engine in at_batch:
            figures.append((at_batch[engine], f"{engine} on {cpu_class}"))
        elif at_batch:
            slowest = min(at_batch, key=at_batch.get)
            figures.append((at_batch[slowest], f"{cpu_class}, where {engine} was not measured: {slowest}'s"))
    return min(figures)


@dataclass(frozen=True)
class ServingProfile:
    """What a deployment will do per instance, as far as timeouts and concurrency go."""

    engine: str
    max_new_tokens: int
    batch_size: int  # sequences generated at once at most
    concurrency: int  # requests one instance serves at once (gunicorn workers x threads)
    tokens_per_second: float  # one sequence's speed with a full batch, a lower bound
    measured: str  # where that figure comes from

    @classmethod
    def of(cls, spec: AssetSpec, engine: str, max_new_tokens: int, batch_size: int, concurrency: int) -> "ServingProfile":
        """continuous and static batches: a full batch shares at least batch 8's measured throughput
        (throughput only grows with batch size), and a static batch may first wait for the one running;
        sequential: a request may wait for each other one in flight."""
        from distilgpt2_scoring.engines import engine_class

        batching = engine_class(engine).batching
        if batching == "sequential":
            total, where = lowest_measured_speed(spec, engine, 1)
            speed = total / batch_size
        else:
            total, where = lowest_measured_speed(spec, engine, 8)
            speed = total / max(batch_size, 8) / (2 if batching == "static" else 1)
        return cls(engine, max_new_tokens, batch_size, concurrency, speed, f"{total:.0f} tokens/s measured for {where}")

    @property
    def required_timeout_ms(self) -> int:
        return math.ceil(self.max_new_tokens / self.tokens_per_second * 1000 * TIMEOUT_HEADROOM)


def _gunicorn_concurrency(variables: dict[str, str]) -> int:
    """WORKER_COUNT x gunicorn --threads (azmlinfsrv's gunicorn reads GUNICORN_CMD_ARGS)."""
    gunicorn = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    gunicorn.add_argument("--threads", type=int, default=1)
    try:
        workers = int(variables.get("WORKER_COUNT", "1"))
        threads = gunicorn.parse_known_args(shlex.split(variables.get("GUNICORN_CMD_ARGS", "")))[0].threads
    except (ValueError, argparse.ArgumentError) as exc:
        raise AssetError(f"environment_variables WORKER_COUNT / GUNICORN_CMD_ARGS --threads: {exc}") from None
    if workers < 1 or threads < 1:
        raise AssetError(f"WORKER_COUNT ({workers}) and GUNICORN_CMD_ARGS --threads ({threads}) must be at least 1")
    return workers * threads


def _serving_settings(variables: dict[str, str]):
    """The deployment's TEXTGEN_* variables, validated by the scoring code's own settings model."""
    from pydantic import ValidationError
    from distilgpt2_scoring.settings import ENV_PREFIX, ServingSettings

    values = {k[len(ENV_PREFIX):].lower(): v for k, v in variables.items() if k.startswith(ENV_PREFIX)}
    unknown = sorted(ENV_PREFIX + k.upper() for k in values if k not in ServingSettings.model_fields)
    if unknown:
        raise AssetError(f"environment_variables: unknown serving setting(s) {', '.join(unknown)}")
    try:
        # model_validate, not the constructor: only the deployment's values, never this shell's env.
        return ServingSettings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).upper() or "*"  # no loc: a check across fields
        raise AssetError(f"environment_variables {ENV_PREFIX}{field}: {first['msg']}") from None


def serving_profile(spec: AssetSpec, deployment: Any) -> ServingProfile:
    variables = {str(k): str(v) for k, v in (deployment.environment_variables or {}).items()}
    concurrency = _gunicorn_concurrency(variables)
    if deployment.code_configuration is None:
        # Azure's own MLflow scoring: no cap on max_new_tokens; the card's request must fit.
        card_tokens = int(spec.sample_request.get("params", {}).get("max_new_tokens", 0))
        return ServingProfile.of(spec, NO_CODE_ENGINE, card_tokens, concurrency, concurrency)
    settings = _serving_settings(variables)
    device = "cuda" if sku_catalog()[canonical_sku(deployment.instance_type)].gpus else "cpu"
    try:
        engine = settings.engine_on(settings.device if settings.device != "auto" else device)
    except ValueError as exc:
        raise AssetError(f"environment_variables: {exc} ({deployment.instance_type} has a GPU)") from None
    return ServingProfile.of(spec, engine, settings.max_new_tokens, settings.max_batch_size, concurrency)


# checks ----------------------------------------------------------------------------------------


def _check_names(endpoint: Any, deployment: Any) -> None:
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name

    try:
        validate_endpoint_or_deployment_name(endpoint.name)
        validate_endpoint_or_deployment_name(deployment.name, is_deployment=True)
    except Exception as exc:
        raise AssetError(_one_line(exc)) from None


def _check_model(spec: AssetSpec, deployment: Any) -> None:
    model = deployment.model
    match = MODEL_REFERENCE.match(model) if isinstance(model, str) else None
    if not match:
        raise AssetError(
            f"model must reference a registered version, e.g. {model_reference(spec, 'azureml')}; got {model!r}"
        )
    name = match["name"] or match["ws_name"]
    version = match["version"] or match["ws_version"]
    if name != spec.name or version != spec.version:
        raise AssetError(
            f"model {model} is not defined by spec.yaml, which defines {spec.name} version {spec.version}"
        )


def _check_compute(spec: AssetSpec, deployment: Any) -> list[str]:
    """The instance type (check_instance_type) and count; returns the notices to show."""
    notices = check_instance_type(spec, deployment.instance_type, "instance_type")
    if deployment.instance_count is None or deployment.instance_count < 1:
        raise AssetError(f"instance_count must be at least 1, got {deployment.instance_count}")
    return notices


def check_instance_type(spec: AssetSpec, sku: str | None, field: str) -> list[str]:
    """A VM size that serves the model (a deployment's instance type, a batch cluster's size):
    allow-listed, in the catalog, at least the minimum, live and runnable; returns the notices to
    show (a retirement announced for later)."""
    allow = {s.lower(): s for s in spec.allow_list("inference")}
    if not sku or sku.lower() not in allow:
        raise AssetError(
            f"{field} {sku!r} is not in spec.yaml's inference_compute_allow_list "
            f"(default {spec.allow_list('inference')[0]})"
        )
    name = canonical_sku(sku)
    if name is None:
        raise AssetError(f"{field} {sku} has no entry in model/sku_catalog.csv")
    minimum = spec.min_sku_spec("inference")
    if not meets(name, minimum):
        raise AssetError(
            f"{field} {sku} ({sku_catalog()[name]}) is below inference-min-sku-spec {minimum} (vCPUs|GPUs|memoryGB|tempDiskGB)"
        )
    status = sku_status(name, "inference")
    if not status.usable:
        raise AssetError(f"{field} {refusal(status, 'inference', allow_listed(spec, 'inference'))}")
    return [status.notice] if status.notice else []


def _check_code(deployment: Any) -> None:
    code = deployment.code_configuration
    if code is None:
        if deployment.environment is not None:
            raise AssetError("a deployment with an environment needs code_configuration (scoring_script)")
        return
    if str(code.code).startswith("azureml:"):
        return  # an already registered code version
    script = Path(deployment.base_path, code.code, code.scoring_script or "")
    if not script.is_file():
        raise AssetError(f"code_configuration: scoring script {script} does not exist")


def _write_deadline(deployment: Any, overrides: list[dict[str, str]]) -> None:
    """Our scoring's deadline is the request timeout: written from request_settings.request_timeout_ms,
    and a different value set for it explicitly is refused (the YAML's copy is only for az ml users)."""
    if deployment.code_configuration is None:  # Azure's own scoring has no deadline of ours
        return
    timeout_ms = str(getattr(deployment.request_settings, "request_timeout_ms", None) or AZURE_DEFAULT_TIMEOUT_MS)
    explicit = [value for pair in overrides for key, value in pair.items() if key == f"environment_variables.{DEADLINE_VARIABLE}"]
    if explicit and explicit[-1] != timeout_ms:
        raise AssetError(
            f"environment_variables.{DEADLINE_VARIABLE} is {explicit[-1]} but request_settings.request_timeout_ms is "
            f"{timeout_ms}; set the timeout once (request_settings.request_timeout_ms): deploy writes both"
        )
    deployment.environment_variables = {**(deployment.environment_variables or {}), DEADLINE_VARIABLE: timeout_ms}


def _check_requests(profile: ServingProfile, deployment: Any) -> None:
    settings = deployment.request_settings
    concurrency = getattr(settings, "max_concurrent_requests_per_instance", None) or 1
    timeout_ms = getattr(settings, "request_timeout_ms", None) or AZURE_DEFAULT_TIMEOUT_MS
    if concurrency != profile.concurrency:
        raise AssetError(
            f"request_settings.max_concurrent_requests_per_instance is {concurrency} but the server runs "
            f"{profile.concurrency} at once (WORKER_COUNT x GUNICORN_CMD_ARGS --threads); make them equal"
        )
    if timeout_ms > MAX_REQUEST_TIMEOUT_MS:
        raise AssetError(
            f"request_settings.request_timeout_ms {timeout_ms} is over Azure's maximum {MAX_REQUEST_TIMEOUT_MS}"
        )
    if timeout_ms < profile.required_timeout_ms:
        raise AssetError(
            f"request_settings.request_timeout_ms {timeout_ms} is too short: {profile.max_new_tokens} new tokens at "
            f"{profile.tokens_per_second:.1f} tokens/s ({profile.engine}, {profile.batch_size} sequences at once; "
            f"{profile.measured} on 2 vCPUs) need {profile.required_timeout_ms} ms with {TIMEOUT_HEADROOM}x headroom; "
            "raise it or lower max_new_tokens"
        )



# plan ------------------------------------------------------------------------------------------


@dataclass
class DeploymentPlan:
    endpoint: Any  # ManagedOnlineEndpoint
    deployment: Any  # ManagedOnlineDeployment
    profile: ServingProfile
    notices: list[str]  # worth knowing, not a refusal (e.g. a retirement announced for later)


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
    deployment = _load(load_online_deployment, root / (deployment_file or DEPLOYMENT_FILE), deployment_overrides)
    # The endpoint is the one the deployment names, so --set endpoint_name=... moves both.
    try:
        endpoint_path = root / (endpoint_file or ENDPOINT_FILE)
        endpoint = _load(load_online_endpoint, endpoint_path, [{"name": deployment.endpoint_name}])
    except AssetError as exc:
        if "name:" not in str(exc):
            raise
        raise AssetError(
            f"endpoint name {deployment.endpoint_name!r}: 3-32 letters, digits and hyphens, starting with a letter"
        ) from None

    _check_names(endpoint, deployment)
    _check_model(spec, deployment)
    notices = _check_compute(spec, deployment)
    _check_code(deployment)
    _write_deadline(deployment, deployment_overrides)
    profile = serving_profile(spec, deployment)
    _check_requests(profile, deployment)
    return DeploymentPlan(endpoint, deployment, profile, notices)


def deployment_overrides_for(
    spec: AssetSpec, overrides: list[dict[str, str]] | None, model_registry: str | None, endpoint_name: str | None, deployment_name: str | None
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


def _load(loader: Callable[..., Any], path: Path, overrides: list[dict[str, str]]) -> Any:
    if not path.is_file():
        raise AssetError(f"{path}: no such file")
    try:
        return loader(path, params_override=overrides)
    except Exception as exc:
        raise AssetError(f"{path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    """azure.ai.ml's schema errors embed a JSON dict of field -> messages: flatten it to one line;
    other errors: their first line."""
    text = str(exc)
    try:
        match = re.search(r"\{.*\}", text, re.S)
        text = "; ".join(f"{field}: {msg}" for field, msg in _flatten(json.loads(match.group(0))))
    except (AttributeError, ValueError):
        text = next((line for line in text.splitlines() if line.strip()), "")
    return " ".join(text.split()) or type(exc).__name__


def _flatten(errors: Any, prefix: str = ""):
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _flatten(value, f"{prefix}{key}.")
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        yield prefix.rstrip("."), " ".join(errors)
    else:
        for item in errors if isinstance(errors, list) else [errors]:
            yield from _flatten(item, prefix)


# dry run: what the SDK would send ---------------------------------------------------------------


# The MLClient service clients that online endpoints, and deployments + environments, go through.
ENDPOINTS_API, DEPLOYMENTS_API = "ServiceClient022022Preview", "ServiceClient042023Preview"


def _api_version(client_name: str) -> str:
    """The REST API version MLClient uses for an operation group (read from the SDK, not repeated)."""
    from azure.ai.ml import _ml_client

    return getattr(_ml_client, client_name).keywords["api_version"]


def _wire(rest_object: Any) -> dict:
    """A REST model as the SDK serializes it onto the wire (read-only fields dropped)."""
    from azure.ai.ml._restclient.arm_ml_service._utils.model_base import SdkJSONEncoder

    return json.loads(json.dumps(rest_object, cls=SdkJSONEncoder, exclude_readonly=True))


def _request(step: str, url: str, api: str, body: dict) -> dict:
    return {"step": step, "method": "PUT", "url": f"{url}?api-version={_api_version(api)}", "body": body}


def dry_run_requests(plan: DeploymentPlan, workspace: Workspace | None, location: str | None) -> list[dict]:
    """Every request `submit` makes through the SDK, in order, with the bodies it would send.

    The SDK uploads scoring/ and names the resulting code version only at run time; that one id is
    shown as a placeholder, with the content hash the SDK computes for the upload.
    """
    workspace = workspace or PLACEHOLDER_WORKSPACE
    location = location or "{workspaceLocation}"
    endpoint_url = f"{workspace.arm_prefix}/onlineEndpoints/{plan.endpoint.name}"
    endpoint_body = _wire(plan.endpoint._to_rest_online_endpoint(location))
    requests = [_request("create endpoint (skipped when it exists)", endpoint_url, ENDPOINTS_API, endpoint_body)]
    deployment = copy.deepcopy(plan.deployment)
    requests += uploads(deployment, workspace)
    deployment_url = f"{endpoint_url}/deployments/{deployment.name}"
    deployment_body = _wire(deployment._to_rest_object(location=location))
    requests.append(_request("create deployment", deployment_url, DEPLOYMENTS_API, deployment_body))
    routed = copy.deepcopy(plan.endpoint)
    routed.traffic = {deployment.name: 100}
    routed_body = _wire(routed._to_rest_online_endpoint(location))
    requests.append(_request("route all traffic", endpoint_url, ENDPOINTS_API, routed_body))
    return requests


def uploads(deployment: Any, workspace: Workspace) -> list[dict]:
    """What the SDK sends before a deployment with local code and an inline environment: the code
    upload and the environment's anonymous version. Both are replaced in `deployment` (a copy) by
    what its own request then carries."""
    from azure.ai.ml.entities._assets import Code

    requests = []
    if deployment.code_configuration is not None:
        code = Code(path=str(Path(deployment.base_path, deployment.code_configuration.code).resolve()))
        requests.append({"step": "upload code", "source": code.path, "hash_sha256": code._hash_sha256})
        deployment.code_configuration.code = f"{{code version created from the upload of {code.path}}}"
    environment = deployment.environment
    if environment is not None and not isinstance(environment, str):  # inline: an anonymous version
        env_url = f"{workspace.arm_prefix}/environments/{environment.name}/versions/{environment.version}"
        requests.append(_request("create environment", env_url, DEPLOYMENTS_API, _wire(environment._to_rest_object())))
        deployment.environment = env_url  # the SDK sends the created version's plain ARM id
    return requests


# pinning the model's content ------------------------------------------------------------------------

PIN_VARIABLE = "TEXTGEN_EXPECTED_CONTENT_SHA256"


def pin_content_digest(plan: DeploymentPlan, properties_of: Callable[[str, str, str], dict | None], log: Callable[[str], None] = print) -> None:
    """Pin the deployment to the content its registry version records (publish records
    content_sha256), so that the server refuses any other files. properties_of(registry, name,
    version) -> the version's properties (None: no such version). A pin given explicitly stays."""
    from ..publish import CONTENT_PROPERTY

    deployment = plan.deployment
    variables = deployment.environment_variables or {}
    match = MODEL_REFERENCE.match(deployment.model or "")
    if deployment.code_configuration is None or variables.get(PIN_VARIABLE) or not (match and match["registry"]):
        return
    properties = properties_of(match["registry"], match["name"], match["version"]) or {}
    digest = properties.get(CONTENT_PROPERTY)
    if digest:
        deployment.environment_variables = {**variables, PIN_VARIABLE: digest}
        log(f"pinned to content sha256 {digest}, as registry {match['registry']} records it: other files will not start")
    else:
        log(
            f"registry {match['registry']} records no content digest for {match['name']} {match['version']} (Microsoft's versions "
            f"do not): the server logs the digest it serves at start; pin it with --set environment_variables.{PIN_VARIABLE}=<digest>"
        )


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

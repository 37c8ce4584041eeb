"""Every refusal before an Azure call: names, model, compute, code, request settings, the deadline.

Each check raises AssetError with one line that names the field and what would be accepted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import AssetError
from ..sku_fitness import SkuRules, assess
from ..spec import AssetSpec
from . import sdk
from .failures import one_line
from .profile import TIMEOUT_HEADROOM, ServingProfile

MAX_REQUEST_TIMEOUT_MS = 180_000  # Azure's ceiling for request_settings.request_timeout_ms
AZURE_DEFAULT_TIMEOUT_MS = 5_000  # what Azure uses when request_settings leaves it out
# The scoring's request deadline: written from request_settings.request_timeout_ms, so the two agree.
DEADLINE_VARIABLE = "TEXTGEN_REQUEST_TIMEOUT_MS"
MODEL_REFERENCE = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$"
    r"|^(?:azureml:)?(?P<ws_name>[^:/]+):(?P<ws_version>[^:/]+)$"  # the loader drops "azureml:"
)


def model_reference(spec: AssetSpec, registry: str) -> str:
    """spec.yaml's name and version in a registry, as a deployment's `model`."""
    return f"azureml://registries/{registry}/models/{spec.name}/versions/{spec.version}"


def check_names(endpoint: Any, deployment: Any) -> None:
    try:
        sdk.check_names(endpoint.name, deployment.name)
    except Exception as exc:
        raise AssetError(one_line(exc)) from None


def check_model(spec: AssetSpec, deployment: Any) -> None:
    model = deployment.model
    match = MODEL_REFERENCE.match(model) if isinstance(model, str) else None
    if not match:
        raise AssetError(
            f"model must reference a registered version, e.g. {model_reference(spec, 'azureml')}; got {model!r}"
        )
    name = match["name"] or match["ws_name"]
    version = match["version"] or match["ws_version"]
    if name != spec.name or version != spec.version:
        raise AssetError(f"model {model} is not defined by spec.yaml, which defines {spec.name} version {spec.version}")


def check_compute(spec: AssetSpec, deployment: Any) -> list[str]:
    """The instance type (check_instance_type) and count; returns the notices to show."""
    notices = check_instance_type(spec, deployment.instance_type, "instance_type", online_endpoint=True)
    if deployment.instance_count is None or deployment.instance_count < 1:
        raise AssetError(f"instance_count must be at least 1, got {deployment.instance_count}")
    return notices


def check_instance_type(spec: AssetSpec, sku: str | None, field: str, online_endpoint: bool = False) -> list[str]:
    """A VM size that serves the model (a deployment's instance type, a batch cluster's size): the one
    SKU assessment (sku_fitness) for inference; returns the notices to show (a retirement announced for later)."""
    rules = SkuRules("inference", spec.allow_list("inference"), spec.min_sku_spec("inference"))
    fit = assess(str(sku), rules, online_endpoint)
    if not fit.fits:
        default = f" (default {rules.allow_list[0]})" if fit.rule == "allow-list" else ""
        raise AssetError(f"{field} {fit.message}{default}")
    return [fit.notice] if fit.notice else []


def check_code(deployment: Any) -> None:
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


def write_deadline(deployment: Any, overrides: list[dict[str, str]]) -> None:
    """Our scoring's deadline is the request timeout: written from request_settings.request_timeout_ms,
    and a different value set for it explicitly is refused (the YAML's copy is only for az ml users)."""
    if deployment.code_configuration is None:  # Azure's own scoring has no deadline of ours
        return
    timeout_ms = str(getattr(deployment.request_settings, "request_timeout_ms", None) or AZURE_DEFAULT_TIMEOUT_MS)
    explicit = [
        value
        for pair in overrides
        for key, value in pair.items()
        if key == f"environment_variables.{DEADLINE_VARIABLE}"
    ]
    if explicit and explicit[-1] != timeout_ms:
        raise AssetError(
            f"environment_variables.{DEADLINE_VARIABLE} is {explicit[-1]} but request_settings.request_timeout_ms is "
            f"{timeout_ms}; set the timeout once (request_settings.request_timeout_ms): deploy writes both"
        )
    deployment.environment_variables = {**(deployment.environment_variables or {}), DEADLINE_VARIABLE: timeout_ms}


def check_requests(profile: ServingProfile, deployment: Any) -> None:
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

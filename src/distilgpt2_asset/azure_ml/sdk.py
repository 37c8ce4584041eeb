"""Every call into the Azure SDKs' private modules, in one file: an SDK upgrade that moves one breaks here.

azure-ai-ml 1.35.2 keeps these behind underscores: the REST API version each MLClient operation
group uses, its wire serialization and each entity's REST form, the endpoint and deployment name
rules, the code upload's content hash, the model batch deployment loader and the pre-submit checks
its operations run. azure-mgmt-monitor 7.0.0 keeps its serializer and request builder private.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The MLClient service clients that endpoints, and deployments + environments, go through; and
# those of batch endpoints, batch deployments and computes.
ENDPOINTS_API, DEPLOYMENTS_API = "ServiceClient022022Preview", "ServiceClient042023Preview"
BATCH_ENDPOINTS_API, BATCH_DEPLOYMENTS_API, COMPUTE_API = (
    "ServiceClient102023",
    "ServiceClient012024PreviewArm",
    "ServiceClient082023Preview",
)


def api_version(client_name: str) -> str:
    """The REST API version MLClient uses for an operation group (read from the SDK, not repeated)."""
    from azure.ai.ml import _ml_client

    return getattr(_ml_client, client_name).keywords["api_version"]


def wire(rest_object: Any) -> dict:
    """A REST model as the SDK serializes it onto the wire (read-only fields dropped)."""
    from azure.ai.ml._restclient.arm_ml_service._utils.model_base import SdkJSONEncoder

    return json.loads(json.dumps(rest_object, cls=SdkJSONEncoder, exclude_readonly=True))


def rest_body(entity: Any, location: str | None = None) -> dict:
    """The body the SDK sends for an entity: online or batch endpoint, deployment, environment, cluster."""
    from azure.ai.ml.entities import BatchEndpoint, OnlineEndpoint

    if isinstance(entity, OnlineEndpoint):
        return wire(entity._to_rest_online_endpoint(location))  # type: ignore[arg-type]  # None: as the SDK's own dry run
    if isinstance(entity, BatchEndpoint):
        return wire(entity._to_rest_batch_endpoint(location))  # type: ignore[arg-type]  # None: as above
    return wire(entity._to_rest_object(location=location) if location is not None else entity._to_rest_object())


def check_names(endpoint_name: str, deployment_name: str) -> None:
    """The SDK's name rules for an endpoint and a deployment (raises what the SDK raises)."""
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name

    validate_endpoint_or_deployment_name(endpoint_name)
    validate_endpoint_or_deployment_name(deployment_name, is_deployment=True)


def code_upload_hash(path: Path) -> str:
    """The content hash the SDK computes for a code folder it uploads (it names the code version)."""
    from azure.ai.ml.entities._assets import Code

    return str(Code(path=str(path))._hash_sha256)


def model_batch_deployment_loader() -> Callable[..., Any]:
    """The loader of a batchDeployment YAML with `type: model` (not exported by azure.ai.ml)."""
    from azure.ai.ml.entities._load_functions import load_model_batch_deployment

    return load_model_batch_deployment


def presubmit_checks(entity: Any) -> tuple[dict[str, str], list[tuple[str, Callable[[], Any]]]]:
    """The local checks azure.ai.ml runs before it sends an entity: (messages already found by
    `_validate()` for jobs and components, by YAML path; checks to call for deployments and
    environments, each with the YAML path it concerns)."""
    from azure.ai.ml._utils._endpoint_utils import validate_scoring_script
    from azure.ai.ml.entities import BatchDeployment, Component, Environment, Job, OnlineDeployment

    if isinstance(entity, (Job, Component)) and hasattr(entity, "_validate"):
        return dict(entity._validate().error_messages), []
    checks: list[tuple[str, Callable[[], Any]]] = []
    if isinstance(entity, (OnlineDeployment, BatchDeployment)):
        for where, method in (
            ("name", "_validate_name"),
            ("scale_settings", "_validate_scale_settings"),
            ("output_action", "_validate"),
        ):
            if hasattr(entity, method):
                checks.append((where, getattr(entity, method)))
        code = entity.code_configuration
        if code is not None:
            checks.append(("code_configuration", code._validate))
            if code.code and not str(code.code).startswith("azureml:"):
                checks.append(("code_configuration.scoring_script", lambda: validate_scoring_script(entity)))
    if isinstance(entity, Environment):
        checks.append(("image", entity.validate))
    return {}, checks


def monitor_body(resource: Any) -> dict:
    """An azure-mgmt-monitor model (AutoscaleSettingResource, MetricAlertResource) as MonitorManagementClient
    serializes it (client-side validation off, as there)."""
    from azure.mgmt.monitor import models
    from azure.mgmt.monitor._utils.serialization import Serializer

    serializer = Serializer({k: v for k, v in models.__dict__.items() if isinstance(v, type)})
    serializer.client_side_validation = False
    return serializer.body(resource, type(resource).__name__)


def autoscale_request(resource_group: str, setting_name: str, subscription_id: str) -> Any:
    """The HTTP request azure-mgmt-monitor builds to create or update an autoscale setting."""
    from azure.mgmt.monitor.operations._autoscale_settings_operations import build_create_or_update_request

    return build_create_or_update_request(resource_group, setting_name, subscription_id)


def metric_alert_request(resource_group: str, rule_name: str, subscription_id: str) -> Any:
    """The HTTP request azure-mgmt-monitor builds to create or update a metric alert rule."""
    from azure.mgmt.monitor.operations._metric_alerts_operations import build_create_or_update_request

    return build_create_or_update_request(resource_group, rule_name, subscription_id)

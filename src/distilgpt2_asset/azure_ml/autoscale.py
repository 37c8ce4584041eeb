"""Autoscale as code: jobs/deploy/autoscale.yml -> an Azure Monitor autoscale setting for the deployment.

load (pydantic: unknown fields and wrong types refused, each with its YAML path)
-> check against how Azure Monitor evaluates it (scale out when ANY scale-out rule holds, scale in
   only when ALL scale-in rules hold) and against measurements: scale-in rules on metrics that report
   while the deployment is idle, no overlapping or flapping thresholds, cooldowns that cover
   provisioning + cold start, latency thresholds between the full-batch time of the card's request
   and the request timeout, MAX within the per-deployment limit and the quota hint
-> the SDK's own models (azure.mgmt.monitor.models.AutoscaleSettingResource)
-> dry run: the PUT request azure-mgmt-monitor builds and the body its serializer writes;
   submit: MonitorManagementClient.autoscale_settings.create_or_update.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field

from ..errors import AssetError, invalid_as_asset_error
from ..skus import canonical_sku, sku_catalog
from ..spec import AssetSpec, read_yaml
from . import sdk
from .checks import AZURE_DEFAULT_TIMEOUT_MS
from .workspace import PLACEHOLDER_WORKSPACE, Workspace

AUTOSCALE_FILE = Path("jobs") / "deploy" / "autoscale.yml"
# Measured by the benchmark package: the server's start with the engine files present, and the
# OpenVINO conversion a model folder without them (Microsoft's published one) needs at first start.
COLD_START_FILE = Path("benchmarks") / "results.json"
CONVERSION_FILE = Path("benchmarks") / "generate.json"
METRIC_GRAIN = timedelta(minutes=1)  # the deployment metrics' only time grain (PT1M)
# Azure Monitor's limits for a rule's time window and a scale action's cooldown.
WINDOW_MINUTES = (5, 12 * 60)
COOLDOWN_MINUTES = (1, 7 * 24 * 60)
# The metrics of a managed online deployment (Azure Monitor's supported metrics for
# Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments): name -> unit.
DEPLOYMENT_METRICS = {
    "CpuUtilizationPercentage": "percent",
    "CpuMemoryUtilizationPercentage": "percent",
    "DiskUtilization": "percent",
    "GpuUtilizationPercentage": "percent",
    "GpuMemoryUtilizationPercentage": "percent",
    "RequestLatency_P50": "milliseconds",
    "RequestLatency_P90": "milliseconds",
    "RequestLatency_P95": "milliseconds",
    "RequestLatency_P99": "milliseconds",
    "RequestsPerMinute": "count",
}
# Averages over the instances: one instance less carries its share (N/(N-1) times the load each).
PER_INSTANCE_METRICS = {name for name, unit in DEPLOYMENT_METRICS.items() if unit == "percent"}
# A latency percentile of no requests has no value: while a deployment is idle these report nothing,
# and a scale-in rule on one never holds (Azure Monitor scales in only when every scale-in rule holds).
SILENT_WHEN_IDLE = {name for name, unit in DEPLOYMENT_METRICS.items() if unit == "milliseconds"}
SCALE_OUT, SCALE_IN = ("GreaterThan", "GreaterThanOrEqual"), ("LessThan", "LessThanOrEqual")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capacity(_Strict):
    minimum: int = Field(ge=1)  # a managed online deployment has at least one instance
    maximum: int = Field(ge=1)


class Provisioning(_Strict):
    minutes: float = Field(gt=0)
    source: str


class QuotaHint(_Strict):
    cores_per_family: int = Field(ge=0)
    gpu_cores_per_family: int = Field(ge=0)
    upgrade_reserve_percent: int = Field(ge=0)
    instances_per_deployment: int = Field(ge=1)
    source: str


class Rule(_Strict):
    metric: str
    operator: Literal["GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"]
    threshold: float
    window_minutes: int
    scale: Literal["increase", "decrease"]
    change_count: int = Field(ge=1)
    cooldown_minutes: int
    statistic: Literal["Average", "Min", "Max"] = "Average"  # across instances, per minute
    time_aggregation: Literal["Average", "Minimum", "Maximum", "Last"] = "Average"  # over the window

    @property
    def label(self) -> str:
        return f"{self.scale} on {self.metric} {self.operator} {self.threshold:g}"


class AutoscaleProfile(_Strict):
    capacity: Capacity
    provisioning: Provisioning
    quota: QuotaHint
    rules: list[Rule] = Field(min_length=1)


def load_profile(path: Path) -> AutoscaleProfile:
    data = read_yaml(path)
    with invalid_as_asset_error(str(path), lambda location: f": {location or 'the file'}"):
        return AutoscaleProfile.model_validate(data)


def parse_bounds(text: str) -> tuple[int, int]:
    """--autoscale MIN:MAX -> (MIN, MAX)."""
    low, sep, high = str(text).partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = None
    if not sep or bounds is None:
        raise AssetError(f"--autoscale {text!r}: expected MIN:MAX instance counts, e.g. 1:3")
    return bounds


# measurements ------------------------------------------------------------------------------------


def _measured(root: Path, relative: Path, keys: tuple[str, ...], writer: str) -> float:
    path = root / relative
    try:
        value = json.loads(path.read_text())
        for key in keys:
            value = value[key]
        return float(value)
    except (OSError, ValueError, KeyError, TypeError):
        raise AssetError(f"{path}: no measured {'.'.join(keys)}; run {writer}") from None


@dataclass(frozen=True)
class Floors:
    """The least a profile may ask for, from measurements and documented facts."""

    cooldown_s: float  # provisioning + cold start + first-start conversion
    cooldown_how: str  # its derivation, in words
    latency_ms: float  # the card's request on a full batch at the lowest measured speed
    latency_how: str
    timeout_ms: int  # the deployment's request timeout: a latency threshold above it never fires

    @classmethod
    def of(cls, spec: AssetSpec, profile: AutoscaleProfile, serving, timeout_ms: int) -> Floors:
        root = spec.path.parent
        cold = _measured(root, COLD_START_FILE, ("ours", "cold_start_s"), "python -m distilgpt2_asset.bench serving")
        conversion = _measured(
            root,
            CONVERSION_FILE,
            ("first_start", "openvino_conversion_s"),
            "python -m distilgpt2_asset.bench bulk",
        )
        tokens = int(spec.sample_request.get("params", {}).get("max_new_tokens", 0))
        latency_ms = tokens / serving.tokens_per_second * 1000
        cooldown_how = (
            f"{profile.provisioning.minutes:g} min provisioning + {cold:.1f} s cold start + "
            f"{conversion:.1f} s OpenVINO conversion at first start"
        )
        latency_how = (
            f"{tokens} new tokens at {serving.tokens_per_second:.1f} tokens/s per sequence on a full batch; "
            f"{serving.measured}"
        )
        cooldown_s = profile.provisioning.minutes * 60 + cold + conversion
        return cls(cooldown_s, cooldown_how, latency_ms, latency_how, timeout_ms)

    def __str__(self) -> str:
        return (
            f"cooldowns >= {self.cooldown_s / 60:.1f} min ({self.cooldown_how}); "
            f"scale-out latency >= {self.latency_ms:.0f} ms ({self.latency_how})"
        )


# checks --------------------------------------------------------------------------------------------


def _check_rule(rule: Rule, floors: Floors) -> None:
    unit = DEPLOYMENT_METRICS.get(rule.metric)
    if unit is None:
        raise AssetError(
            f"{rule.label}: {rule.metric} is not a metric of online deployments ({', '.join(DEPLOYMENT_METRICS)})"
        )
    if (rule.operator in SCALE_OUT) != (rule.scale == "increase"):
        direction = "scale-out (increase)" if rule.scale == "increase" else "scale-in (decrease)"
        wanted = " or ".join(SCALE_OUT if rule.scale == "increase" else SCALE_IN)
        raise AssetError(f"{rule.label}: a {direction} rule needs operator {wanted}")
    if unit == "percent" and not 0 < rule.threshold < 100:
        raise AssetError(f"{rule.label}: a percentage threshold lies between 0 and 100")
    if not WINDOW_MINUTES[0] <= rule.window_minutes <= WINDOW_MINUTES[1]:
        raise AssetError(
            f"{rule.label}: window_minutes must be {WINDOW_MINUTES[0]} to {WINDOW_MINUTES[1]} (Azure Monitor's limits)"
        )
    if not COOLDOWN_MINUTES[0] <= rule.cooldown_minutes <= COOLDOWN_MINUTES[1]:
        raise AssetError(
            f"{rule.label}: cooldown_minutes must be {COOLDOWN_MINUTES[0]} to {COOLDOWN_MINUTES[1]} "
            "(Azure Monitor's limits)"
        )
    if rule.cooldown_minutes * 60 < floors.cooldown_s:
        raise AssetError(
            f"{rule.label}: cooldown {rule.cooldown_minutes} min is shorter than a new instance takes to serve "
            f"({math.ceil(floors.cooldown_s / 60)} min: {floors.cooldown_how}); "
            "the rule would act again before the last action shows"
        )
    if unit == "milliseconds" and rule.scale == "increase":
        if rule.threshold < floors.latency_ms:
            raise AssetError(
                f"{rule.label}: below what a healthy instance answers on a full batch ({floors.latency_ms:.0f} ms: "
                f"{floors.latency_how}); it would scale out under any steady load"
            )
        if rule.threshold >= floors.timeout_ms:
            raise AssetError(
                f"{rule.label}: at or above the request timeout ({floors.timeout_ms} ms): requests fail before it fires"
            )


def _check_scale_in(rules: list[Rule], minimum: int) -> None:
    """Azure Monitor scales in only when every scale-in rule holds at once: each must report while the
    deployment is idle, and none may overlap or flap with a scale-out rule on its metric."""
    scale_in = [r for r in rules if r.scale == "decrease"]
    if not scale_in:
        raise AssetError("no scale-in rule: instances added under load would never be released")
    for twin in scale_in:
        if twin.metric in SILENT_WHEN_IDLE:
            raise AssetError(
                f"{twin.label}: {twin.metric} has no value while no requests come, and Azure Monitor scales in "
                "only when every scale-in rule holds: an idle deployment would never scale in to MIN; scale in on "
                "a metric that reports when idle (CpuUtilizationPercentage, CpuMemoryUtilizationPercentage)"
            )
        for out in (r for r in rules if r.scale == "increase" and r.metric == twin.metric):
            if twin.threshold >= out.threshold:
                raise AssetError(
                    f"{twin.label} overlaps {out.label}: the scale-in threshold must be below the scale-out one"
                )
            if twin.window_minutes <= out.window_minutes:
                raise AssetError(
                    f"{twin.label}: its window ({twin.window_minutes} min) must be longer than "
                    f"{out.label}'s ({out.window_minutes} min)"
                )
            if out.metric in PER_INSTANCE_METRICS and twin.threshold * (minimum + 1) / minimum >= out.threshold:
                raise AssetError(
                    f"{twin.label} flaps with {out.label}: going from {minimum + 1} instances to {minimum} puts "
                    f"{twin.threshold:g} x {minimum + 1}/{minimum} = "
                    f"{twin.threshold * (minimum + 1) / minimum:g} on each, "
                    "at or above the scale-out threshold"
                )


def idle_scale_in_minutes(rules: tuple[Rule, ...] | list[Rule], minimum: int, maximum: int) -> tuple[int, int]:
    """(steps, minutes) from MAX to MIN once requests stop: the first scale-in when the longest
    scale-in window has seen only idle minutes, each next one a cooldown later (taking, where
    scale-in rules differ, the smallest step and the longest cooldown)."""
    scale_in = [r for r in rules if r.scale == "decrease"]
    if maximum == minimum:
        return 0, 0
    steps = math.ceil((maximum - minimum) / min(r.change_count for r in scale_in))
    window = max(r.window_minutes for r in scale_in)
    return steps, window + (steps - 1) * max(r.cooldown_minutes for r in scale_in)


def _check_quota(quota: QuotaHint, instance_type: str, maximum: int, quota_cores: int | None) -> str:
    """Refuse a MAX the quota hint cannot hold; returns the hint used, in words."""
    sku = sku_catalog()[str(canonical_sku(instance_type))]  # the deployment's SKU, checked by its plan
    if maximum > quota.instances_per_deployment:
        raise AssetError(
            f"--autoscale MAX {maximum}: a deployment has at most {quota.instances_per_deployment} instances "
            f"({quota.source})"
        )
    cores = (
        quota_cores if quota_cores is not None else (quota.gpu_cores_per_family if sku.gpus else quota.cores_per_family)
    )
    reserved = math.ceil(maximum * (100 + quota.upgrade_reserve_percent) / 100)
    needed = reserved * sku.vcpus
    hint = f"{cores} cores per VM family" + (" (--quota-cores)" if quota_cores is not None else f" ({quota.source})")
    if needed > cores:
        raise AssetError(
            f"--autoscale MAX {maximum} x {instance_type} needs quota for {reserved} instances "
            f"({quota.upgrade_reserve_percent}% reserved for upgrades) = {needed} cores; the quota hint is {hint}. "
            "Lower MAX, or give your subscription's "
            "quota for the family with --quota-cores"
        )
    return hint


# plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoscalePlan:
    endpoint_name: str
    deployment_name: str
    minimum: int
    maximum: int
    default: int
    rules: tuple[Rule, ...]
    floors: Floors
    quota_hint: str

    @property
    def setting_name(self) -> str:
        return setting_name(self.endpoint_name, self.deployment_name)

    def evaluation(self) -> list[str]:
        """How Azure Monitor evaluates the rules, in words (the dry run and deploy print it)."""
        out = [r.label for r in self.rules if r.scale == "increase"]
        scale_in = [r.label for r in self.rules if r.scale == "decrease"]
        steps, minutes = idle_scale_in_minutes(self.rules, self.minimum, self.maximum)
        return [
            f"scale out when ANY of these holds: {'; '.join(out) or 'none'}",
            f"scale in only when ALL of these hold at once: {'; '.join(scale_in)}",
            f"idle (no requests): from {self.maximum} to {self.minimum} instances in {steps} step(s), "
            f"about {minutes} min after the load stops",
        ]

    def target(self, workspace: Workspace) -> str:
        """The deployment's ARM id: what the setting scales, and whose metrics its rules read."""
        return f"{workspace.arm_prefix}/onlineEndpoints/{self.endpoint_name}/deployments/{self.deployment_name}"

    def resource(self, workspace: Workspace, location: str) -> Any:
        """The setting as azure-mgmt-monitor's own model."""
        from azure.mgmt.monitor.models import (
            AutoscaleProfile as SdkProfile,
        )
        from azure.mgmt.monitor.models import (
            AutoscaleSettingResource,
            MetricTrigger,
            ScaleAction,
            ScaleCapacity,
            ScaleRule,
        )

        target = self.target(workspace)
        rules = [
            ScaleRule(
                metric_trigger=MetricTrigger(
                    metric_name=r.metric,
                    metric_resource_uri=target,
                    time_grain=METRIC_GRAIN,
                    statistic=r.statistic,
                    time_window=timedelta(minutes=r.window_minutes),
                    time_aggregation=r.time_aggregation,
                    operator=r.operator,
                    threshold=r.threshold,
                ),
                scale_action=ScaleAction(
                    direction=r.scale.capitalize(),
                    type="ChangeCount",
                    value=str(r.change_count),
                    cooldown=timedelta(minutes=r.cooldown_minutes),
                ),
            )  # fmt: skip
            for r in self.rules
        ]
        capacity = ScaleCapacity(minimum=str(self.minimum), maximum=str(self.maximum), default=str(self.default))
        return AutoscaleSettingResource(
            location=location,
            profiles=[SdkProfile(name="metrics", capacity=capacity, rules=rules)],
            enabled=True,
            name_properties_name=self.setting_name,
            target_resource_uri=target,
            target_resource_location=location,
        )


def setting_name(endpoint_name: str, deployment_name: str) -> str:
    """One setting per deployment, under a name a rerun finds again (create_or_update replaces it)."""
    return f"autoscale-{endpoint_name}-{deployment_name}"


def plan_autoscale(
    spec: AssetSpec,
    deployment_plan,
    bounds: str | None = None,
    quota_cores: int | None = None,
    autoscale_file: Path | None = None,
) -> AutoscalePlan:
    """The profile of autoscale_file (default jobs/deploy/autoscale.yml) for a checked deployment plan
    (deploy.plan_deployment), with bounds "MIN:MAX" (None: the profile's capacity); every refusal is
    an AssetError."""
    path = spec.path.parent / (autoscale_file or AUTOSCALE_FILE)
    profile = load_profile(path)
    minimum, maximum = parse_bounds(bounds) if bounds else (profile.capacity.minimum, profile.capacity.maximum)
    if not 1 <= minimum <= maximum:
        raise AssetError(
            f"--autoscale {minimum}:{maximum}: need 1 <= MIN <= MAX "
            "(a managed online deployment keeps at least one instance)"
        )
    deployment = deployment_plan.deployment
    timeout_ms = getattr(deployment.request_settings, "request_timeout_ms", None)
    floors = Floors.of(spec, profile, deployment_plan.profile, timeout_ms or AZURE_DEFAULT_TIMEOUT_MS)
    for rule in profile.rules:
        _check_rule(rule, floors)
    _check_scale_in(profile.rules, minimum)
    hint = _check_quota(profile.quota, deployment.instance_type, maximum, quota_cores)
    default = min(max(deployment.instance_count, minimum), maximum)
    endpoint_name, deployment_name = deployment_plan.endpoint.name, deployment.name
    return AutoscalePlan(endpoint_name, deployment_name, minimum, maximum, default, tuple(profile.rules), floors, hint)


# dry run and submit ------------------------------------------------------------------------------


def dry_run_request(plan: AutoscalePlan, workspace: Workspace | None, location: str | None) -> dict:
    """The PUT azure-mgmt-monitor sends to create or update the setting, built by its own request builder."""
    shown = workspace or PLACEHOLDER_WORKSPACE
    location = location or "{workspaceLocation}"
    body = sdk.monitor_body(plan.resource(shown, location))
    request = sdk.autoscale_request(shown.resource_group, plan.setting_name, shown.subscription_id)
    url = request.url if workspace else unquote(request.url)  # placeholders shown as written, not percent-encoded
    return {
        "step": "create autoscale setting",
        "method": request.method,
        "url": url,
        "body": body,
        "evaluation": plan.evaluation(),  # not sent: how Azure Monitor will read these rules
    }


def _where(workspace: Workspace) -> str:
    return f"resource group {workspace.resource_group!r} (autoscale settings)"


def submit_autoscale(
    plan: AutoscalePlan, client: Any, workspace: Workspace, location: str, log: Callable[[str], None] = print
) -> Any:
    """Create or update the setting through MonitorManagementClient (the deployment must exist)."""
    from .failures import AUTOSCALE_ROLE, azure_errors

    log(f"autoscale {plan.setting_name}: {plan.minimum} to {plan.maximum} instances, {len(plan.rules)} rules")
    with azure_errors(_where(workspace), AUTOSCALE_ROLE):
        return client.autoscale_settings.create_or_update(
            workspace.resource_group, plan.setting_name, plan.resource(workspace, location)
        )


def delete_autoscale(client: Any, workspace: Workspace, endpoint_name: str, deployment_name: str) -> None:
    """Delete a deployment's setting (a separate Azure Monitor resource: deleting the endpoint leaves it)."""
    from .failures import AUTOSCALE_ROLE, azure_errors

    with azure_errors(_where(workspace), AUTOSCALE_ROLE):
        client.autoscale_settings.delete(workspace.resource_group, setting_name(endpoint_name, deployment_name))

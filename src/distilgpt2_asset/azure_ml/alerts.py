"""Alerts as code: jobs/monitor/alerts.yml -> Azure Monitor metric alert rules on the online endpoint.

load (pydantic: unknown fields and wrong types refused) -> azure-mgmt-monitor's own models
(MetricAlertResource) -> dry run: the PUT its request builder makes and the body its serializer
writes; submit: MonitorManagementClient.metric_alerts.create_or_update. Rules without an action
group fire into the portal's alert list; add actions (mail, webhook) in Azure Monitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import AssetError
from ..spec import AssetSpec, read_yaml
from . import sdk
from .autoscale import DEPLOYMENT_METRICS
from .workspace import PLACEHOLDER_WORKSPACE, Workspace

ALERTS_FILE = Path("jobs") / "monitor" / "alerts.yml"
# The endpoint's metric dimensions an alert may filter on (Azure Monitor's supported metrics for onlineEndpoints).
DIMENSIONS = {"deployment", "statusCode", "statusCodeClass", "modelStatusCode"}


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    description: str
    metric: Literal[tuple(n for n in DEPLOYMENT_METRICS if n.startswith("Request"))]  # type: ignore[valid-type]
    dimensions: dict[str, str] = {}
    aggregation: Literal["Average", "Maximum", "Minimum", "Total", "Count"]
    operator: Literal["GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"]
    threshold: float
    window_minutes: Literal[5, 15, 30, 60]
    severity: int = Field(ge=0, le=4)


class AlertProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    alerts: list[Alert] = Field(min_length=1)


@dataclass(frozen=True)
class AlertPlan:
    endpoint_name: str
    alerts: tuple[Alert, ...]

    def rule_name(self, alert: Alert) -> str:
        return f"{self.endpoint_name}-{alert.name}"

    def resource(self, alert: Alert, workspace: Workspace) -> Any:
        from azure.mgmt.monitor.models import (
            MetricAlertResource,
            MetricAlertSingleResourceMultipleMetricCriteria,
            MetricCriteria,
            MetricDimension,
        )

        criterion = MetricCriteria(
            name=alert.name,
            metric_name=alert.metric,
            metric_namespace="Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            time_aggregation=alert.aggregation,
            operator=alert.operator,
            threshold=alert.threshold,
            dimensions=[MetricDimension(name=k, operator="Include", values=[v]) for k, v in alert.dimensions.items()],
        )
        return MetricAlertResource(
            location="global",
            description=alert.description,
            severity=alert.severity,
            enabled=True,
            scopes=[f"{workspace.arm_prefix}/onlineEndpoints/{self.endpoint_name}"],
            evaluation_frequency=timedelta(minutes=1),
            window_size=timedelta(minutes=alert.window_minutes),
            criteria=MetricAlertSingleResourceMultipleMetricCriteria(all_of=[criterion]),
            auto_mitigate=True,
        )


def load_alerts(path: Path) -> AlertProfile:
    try:
        profile = AlertProfile.model_validate(read_yaml(path))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AssetError(f"{path}: {problems}") from None
    for alert in profile.alerts:
        if unknown := set(alert.dimensions) - DIMENSIONS:
            raise AssetError(
                f"{path}: alert {alert.name}: unknown dimension {sorted(unknown)}; known: {sorted(DIMENSIONS)}"
            )
    return profile


def plan_alerts(spec: AssetSpec, endpoint_name: str, alerts_file: Path | None = None) -> AlertPlan:
    return AlertPlan(endpoint_name, tuple(load_alerts(spec.path.parent / (alerts_file or ALERTS_FILE)).alerts))


def alert_requests(plan: AlertPlan, workspace: Workspace | None) -> list[dict]:
    """The PUTs azure-mgmt-monitor sends, one per rule, built by its own request builder and serializer."""
    shown = workspace or PLACEHOLDER_WORKSPACE
    requests = []
    for alert in plan.alerts:
        request = sdk.metric_alert_request(shown.resource_group, plan.rule_name(alert), shown.subscription_id)
        url = request.url if workspace else unquote(request.url)
        body = sdk.monitor_body(plan.resource(alert, shown))
        requests.append(
            {"step": f"create metric alert {alert.name}", "method": request.method, "url": url, "body": body}
        )
    return requests


def submit_alerts(plan: AlertPlan, client: Any, workspace: Workspace, log=print) -> None:
    from .failures import AUTOSCALE_ROLE, azure_errors

    with azure_errors(f"resource group {workspace.resource_group!r} (metric alerts)", AUTOSCALE_ROLE):
        for alert in plan.alerts:
            log(f"metric alert {plan.rule_name(alert)}: {alert.description}")
            client.metric_alerts.create_or_update(
                workspace.resource_group, plan.rule_name(alert), plan.resource(alert, workspace)
            )

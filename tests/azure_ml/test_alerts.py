"""jobs/monitor/alerts.yml: loads strictly and becomes azure-mgmt-monitor's MetricAlertResource bodies."""

from __future__ import annotations

import pytest

from distilgpt2_asset.azure_ml.alerts import alert_requests, load_alerts, plan_alerts
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.spec import load_spec


def test_the_profile_alerts_on_p95_latency_5xx_and_503():
    plan = plan_alerts(load_spec(), "distilgpt2-textgen")
    assert {(a.metric, tuple(a.dimensions.items())) for a in plan.alerts} == {
        ("RequestLatency_P95", ()),
        ("RequestsPerMinute", (("statusCodeClass", "5xx"),)),
        ("RequestsPerMinute", (("statusCode", "503"),)),
    }


def test_dry_run_bodies_are_what_the_sdk_serializes():
    from azure.mgmt.monitor.models import MetricAlertResource

    for request in alert_requests(plan_alerts(load_spec(), "distilgpt2-textgen"), None):
        assert (
            request["method"] == "PUT"
            and "/providers/Microsoft.Insights/metricAlerts/distilgpt2-textgen-" in request["url"]
        )
        body = request["body"]
        assert MetricAlertResource.deserialize(body).criteria.all_of[0].metric_name in (
            "RequestLatency_P95",
            "RequestsPerMinute",
        )
        assert body["properties"]["scopes"][0].endswith("/onlineEndpoints/distilgpt2-textgen")


def test_an_unknown_dimension_is_refused(tmp_path):
    path = tmp_path / "alerts.yml"
    path.write_text(
        "alerts:\n  - {name: x, description: d, metric: RequestsPerMinute, dimensions: {colour: red},"
        " aggregation: Average, operator: GreaterThan, threshold: 1, window_minutes: 5, severity: 2}\n"
    )
    with pytest.raises(AssetError, match="unknown dimension"):
        load_alerts(path)

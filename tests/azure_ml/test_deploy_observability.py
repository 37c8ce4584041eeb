"""deploy --app-insights, --collect-data and --alerts: what each adds, shown by the dry run."""

from __future__ import annotations

import json

import pytest

from distilgpt2_asset.cli import main


@pytest.fixture
def dry_run(capsys, monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)

    def run(*flags):
        assert main(["deploy", "--dry-run", *flags]) == 0
        sent = json.loads(capsys.readouterr().out)
        return {r["step"]: r for r in sent}

    return run


def deployment(sent):
    return sent["create deployment"]["body"]["properties"]


def test_by_default_no_application_insights_no_data_collection_no_alerts(dry_run):
    sent = dry_run()
    assert not deployment(sent).get("appInsightsEnabled")
    assert "dataCollector" not in deployment(sent)
    assert deployment(sent)["environmentVariables"]["TEXTGEN_COLLECT_DATA"] == "false"
    assert not [step for step in sent if "alert" in step]


def test_app_insights_enables_it_on_the_deployment(dry_run):
    assert deployment(dry_run("--app-insights"))["appInsightsEnabled"] is True


def test_collect_data_adds_both_collections_and_turns_the_collector_on(dry_run):
    properties = deployment(dry_run("--collect-data"))
    collections = properties["dataCollector"]["collections"]
    assert {name: c["dataCollectionMode"] for name, c in collections.items()} == {
        "model_inputs": "enabled",
        "model_outputs": "enabled",
    }
    assert properties["environmentVariables"]["TEXTGEN_COLLECT_DATA"] == "true"


def test_alerts_adds_one_metric_alert_per_rule_of_the_profile(dry_run):
    alerts = [r for step, r in dry_run("--alerts").items() if step.startswith("create metric alert")]
    assert len(alerts) == 3 and all(r["method"] == "PUT" for r in alerts)


def test_batch_refuses_the_online_only_flags(capsys):
    assert main(["deploy", "--batch", "--dry-run", "--app-insights", "--alerts"]) != 0
    assert "--app-insights, --alerts: online deployments only" in capsys.readouterr().err

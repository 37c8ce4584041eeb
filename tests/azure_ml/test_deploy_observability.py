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
    assert properties["environmentVariables"]["TEXTGEN_COLLECT_DATA_RATE"] == "1.0"


def test_collect_data_with_a_rate_samples_requests_in_the_server_not_each_collection_apart(dry_run):
    properties = deployment(dry_run("--collect-data", "0.1"))
    assert properties["environmentVariables"]["TEXTGEN_COLLECT_DATA_RATE"] == "0.1"
    # Azure's per-collection sampling would keep a request's input without its output.
    assert "samplingRate" not in properties["dataCollector"]
    assert all(c.get("samplingRate", 1.0) == 1.0 for c in properties["dataCollector"]["collections"].values())


@pytest.mark.parametrize("rate", ["0", "1.5", "-0.2", "half"])
def test_a_collection_rate_outside_0_to_1_is_refused_naming_the_flag(rate, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["deploy", "--dry-run", "--collect-data", rate])
    assert exit.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("distilgpt2-asset deploy: error: argument --collect-data: ") and rate in error


def test_alerts_adds_one_metric_alert_per_rule_of_the_profile(dry_run):
    alerts = [r for step, r in dry_run("--alerts").items() if step.startswith("create metric alert")]
    assert len(alerts) == 3 and all(r["method"] == "PUT" for r in alerts)


def test_batch_refuses_the_online_only_flags(capsys):
    assert main(["deploy", "--batch", "--dry-run", "--app-insights", "--alerts"]) != 0
    assert "--app-insights, --alerts: online deployments only" in capsys.readouterr().err

"""`distilgpt2-asset deploy --autoscale MIN:MAX`: jobs/deploy/autoscale.yml -> checked rules -> the exact
AutoscaleSettingResource azure-mgmt-monitor sends (its own models, serializer and request builder).

Only the network is replaced: the real MonitorManagementClient sends through a requests session whose
adapter records the request and answers as Azure Monitor would."""

from __future__ import annotations

import copy
import io
import json
import re
import time

import pytest
import requests
import urllib3
import yaml
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.monitor import MonitorManagementClient

from distilgpt2_asset.azure_ml import workspace as azure_workspace
from distilgpt2_asset.azure_ml.autoscale import (
    AUTOSCALE_FILE,
    SILENT_WHEN_IDLE,
    Rule,
    dry_run_request,
    idle_scale_in_minutes,
    plan_autoscale,
    submit_autoscale,
)
from distilgpt2_asset.azure_ml.deploy import parse_overrides, plan_deployment
from distilgpt2_asset.azure_ml.workspace import Workspace
from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError

from .test_deploy_submit import Done

WORKSPACE = Workspace("0000-sub", "rg-ml", "ws-ml")
DEPLOYMENT_ID = (
    "/subscriptions/0000-sub/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-ml"
    "/onlineEndpoints/distilgpt2-textgen/deployments/blue"
)


@pytest.fixture(scope="module")
def online(asset_spec):
    return plan_deployment(asset_spec, parse_overrides(["instance_type=Standard_DS3_v2"]), model_registry="azureml")


def profile_file(asset_spec, tmp_path, change) -> str:
    """autoscale.yml with `change` applied to its parsed content, written to tmp_path."""
    data = yaml.safe_load((asset_spec.path.parent / AUTOSCALE_FILE).read_text())
    change(data)
    path = tmp_path / "autoscale.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def rule(data, metric, scale) -> dict:
    return next(r for r in data["rules"] if r["metric"] == metric and r["scale"] == scale)


# the body ---------------------------------------------------------------------------------------


def test_dry_run_is_the_put_azure_mgmt_monitor_builds_with_every_rule_on_the_deployment(asset_spec, online):
    plan = plan_autoscale(asset_spec, online, "1:3")
    request = dry_run_request(plan, WORKSPACE, "westeurope")
    assert (request["method"], request["url"]) == (
        "PUT", "/subscriptions/0000-sub/resourcegroups/rg-ml/providers/Microsoft.Insights/autoscalesettings/"
        "autoscale-distilgpt2-textgen-blue?api-version=2022-10-01",
    )  # fmt: skip
    body = request["body"]
    assert body["location"] == "westeurope"
    properties = body["properties"]
    assert (properties["enabled"], properties["targetResourceUri"], properties["targetResourceLocation"]) == (
        True,
        DEPLOYMENT_ID,
        "westeurope",
    )
    [profile] = properties["profiles"]
    assert profile["capacity"] == {"minimum": "1", "maximum": "3", "default": "1"}
    triggers = [
        (
            r["metricTrigger"]["metricName"],
            r["metricTrigger"]["operator"],
            r["metricTrigger"]["threshold"],
            r["metricTrigger"]["timeWindow"],
            r["scaleAction"]["direction"],
            r["scaleAction"]["cooldown"],
        )
        for r in profile["rules"]
    ]
    assert triggers == [
        ("CpuUtilizationPercentage", "GreaterThan", 75, "PT10M", "Increase", "PT20M"),
        ("CpuUtilizationPercentage", "LessThan", 30, "PT30M", "Decrease", "PT20M"),
        ("RequestLatency_P95", "GreaterThan", 10000, "PT10M", "Increase", "PT20M"),
    ]
    for r in profile["rules"]:
        assert r["metricTrigger"]["metricResourceUri"] == DEPLOYMENT_ID and r["metricTrigger"]["timeGrain"] == "PT1M"
        assert (r["scaleAction"]["type"], r["scaleAction"]["value"]) == ("ChangeCount", "1")


def test_the_dry_run_says_how_azure_monitor_evaluates_the_rules(asset_spec, online):
    """Any scale-out rule scales out; scale-in needs every scale-in rule at once; idle, CPU still reports."""
    plan = plan_autoscale(asset_spec, online, "1:3")
    assert dry_run_request(plan, WORKSPACE, "westeurope")["evaluation"] == [
        "scale out when ANY of these holds: increase on CpuUtilizationPercentage GreaterThan 75; "
        "increase on RequestLatency_P95 GreaterThan 10000",
        "scale in only when ALL of these hold at once: decrease on CpuUtilizationPercentage LessThan 30",
        "idle (no requests): from 3 to 1 instances in 2 step(s), about 50 min after the load stops",
    ]


def test_every_scale_in_rule_reports_while_the_deployment_is_idle(asset_spec):
    profile = yaml.safe_load((asset_spec.path.parent / AUTOSCALE_FILE).read_text())
    scale_in = [r["metric"] for r in profile["rules"] if r["scale"] == "decrease"]
    assert scale_in and not set(scale_in) & SILENT_WHEN_IDLE


@pytest.mark.parametrize(
    "minimum, maximum, steps, minutes", [(1, 1, 0, 0), (1, 2, 1, 30), (1, 3, 2, 50), (2, 50, 48, 970)]
)
def test_an_idle_deployment_reaches_min_one_cooldown_per_step_after_the_window(minimum, maximum, steps, minutes):
    rules = [Rule(metric="CpuUtilizationPercentage", operator="LessThan", threshold=30, window_minutes=30,
                  scale="decrease", change_count=1, cooldown_minutes=20)]  # fmt: skip
    assert idle_scale_in_minutes(rules, minimum, maximum) == (steps, minutes)


def test_max_may_reach_the_per_deployment_limit_of_50_with_the_quota_for_it(asset_spec, online):
    # 50 instances + 20% reserved for upgrades = 60 x 4 cores of Standard_DS3_v2
    assert plan_autoscale(asset_spec, online, "1:50", quota_cores=240).maximum == 50


def test_the_default_capacity_is_the_deployments_instance_count_within_min_and_max(asset_spec):
    three = plan_deployment(asset_spec, parse_overrides(["instance_count=3"]))
    assert plan_autoscale(asset_spec, three, "1:2").default == 2
    assert plan_autoscale(asset_spec, three, "1:4").default == 3


class MonitorAdapter(requests.adapters.HTTPAdapter):
    """Azure Monitor's side of the wire: records each request, answers with the stored resource."""

    def __init__(self):
        super().__init__()
        self.sent = []  # (method, url, JSON body) of each request

    def send(self, request, **kwargs):
        self.sent.append((request.method, request.url, json.loads(request.body)))
        stored = json.dumps({**json.loads(request.body), "id": request.path_url.split("?")[0], "name": "x"}).encode()
        raw = urllib3.HTTPResponse(io.BytesIO(stored), {"Content-Type": "application/json"}, 200, preload_content=False)
        return self.build_response(request, raw)


class Token:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("token", int(time.time()) + 3600)


def recording_monitor_client() -> tuple[MonitorManagementClient, MonitorAdapter]:
    adapter, session = MonitorAdapter(), requests.Session()
    session.mount("https://", adapter)
    return MonitorManagementClient(
        Token(), WORKSPACE.subscription_id, transport=RequestsTransport(session=session)
    ), adapter


def test_what_the_monitor_client_sends_is_exactly_the_dry_run(asset_spec, online):
    plan = plan_autoscale(asset_spec, online, "1:3")
    client, adapter = recording_monitor_client()
    submit_autoscale(plan, client, WORKSPACE, "westeurope", log=lambda _: None)
    [(method, url, body)] = adapter.sent
    dry = dry_run_request(plan, WORKSPACE, "westeurope")
    assert (method, url) == ("PUT", "https://management.azure.com" + dry["url"])
    assert body == dry["body"]


class WorkspaceClient:
    """online_endpoints / online_deployments of a workspace in westeurope (no endpoint yet)."""

    def __init__(self):
        self.online_endpoints = self.online_deployments = self

    def get(self, name):
        from azure.core.exceptions import ResourceNotFoundError

        raise ResourceNotFoundError(name)

    def begin_create_or_update(self, entity):
        created = copy.deepcopy(entity)
        created.location = "westeurope"
        return Done(created)


def test_cli_deploys_then_creates_the_autoscale_setting_in_the_endpoints_region(monkeypatch, capsys):
    monitor, adapter = recording_monitor_client()
    monkeypatch.setattr(azure_workspace, "ml_client", lambda workspace: WorkspaceClient())
    monkeypatch.setattr(azure_workspace, "monitor_client", lambda workspace: monitor)
    monkeypatch.setattr("distilgpt2_asset.commands.deploy.registry_properties", lambda *version: {})
    argv = [
        "deploy",
        "--subscription-id",
        "0000-sub",
        "--resource-group",
        "rg-ml",
        "--workspace-name",
        "ws-ml",
        "--autoscale",
        "2:3",
    ]
    assert main(argv) == 0
    [(_, url, body)] = adapter.sent
    assert "/autoscalesettings/autoscale-distilgpt2-textgen-blue?" in url
    assert body["location"] == "westeurope" and body["properties"]["profiles"][0]["capacity"]["minimum"] == "2"
    err = capsys.readouterr().err
    assert "autoscale: 2 to 3 instances; cooldowns >= " in err and "quota hint: 24 cores per VM family" in err


def test_cli_dry_run_appends_the_autoscale_request_offline_with_the_profiles_capacity(capsys, monkeypatch, asset_spec):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["deploy", "--dry-run", "--autoscale"]) == 0
    requests_sent = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in requests_sent][-2:] == ["route all traffic", "create autoscale setting"]
    assert requests_sent[-1]["url"].startswith(
        "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}/providers/Microsoft.Insights/"
    )
    capacity = yaml.safe_load((asset_spec.path.parent / AUTOSCALE_FILE).read_text())["capacity"]
    sent = requests_sent[-1]["body"]["properties"]["profiles"][0]["capacity"]
    assert (sent["minimum"], sent["maximum"]) == (str(capacity["minimum"]), str(capacity["maximum"]))


def test_cli_refuses_autoscale_options_without_autoscale(capsys):
    assert main(["deploy", "--dry-run", "--quota-cores", "48"]) == 2
    assert "--autoscale-file and --quota-cores go with --autoscale [MIN:MAX]" in capsys.readouterr().err


def test_monitor_client_signs_in_as_the_rest_of_deploy(monkeypatch):
    class FakeCredential:
        pass

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", FakeCredential)
    client = azure_workspace.monitor_client(WORKSPACE)
    assert isinstance(client._config.credential, FakeCredential) and client._config.subscription_id == "0000-sub"


def test_a_refused_write_names_the_role_it_needs(asset_spec, online):
    from azure.core.exceptions import HttpResponseError

    class Refusing:
        class autoscale_settings:
            @staticmethod
            def create_or_update(*args):
                error = HttpResponseError("AuthorizationFailed")
                error.status_code = 403
                raise error

    plan = plan_autoscale(asset_spec, online, "1:3")
    with pytest.raises(
        AssetError, match=r"refused this identity \(HTTP 403\).*Monitoring Contributor.*autoscalesettings/write"
    ):
        submit_autoscale(plan, Refusing(), WORKSPACE, "westeurope", log=lambda _: None)


# the checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bounds, message",
    [
        ("3", "expected MIN:MAX instance counts"),
        ("a:b", "expected MIN:MAX instance counts"),
        ("0:2", "need 1 <= MIN <= MAX"),
        ("3:2", "need 1 <= MIN <= MAX"),
        ("1:51", "a deployment has at most 50 instances"),
        (
            "1:6",
            "MAX 6 x Standard_DS3_v2 needs quota for 8 instances (20% reserved for upgrades) = 32 cores; the quota "
            "hint is 24 cores per VM family",
        ),
    ],
)
def test_bounds_outside_what_azure_allows_are_refused(asset_spec, online, bounds, message):
    with pytest.raises(AssetError, match=re.escape(message)):
        plan_autoscale(asset_spec, online, bounds)


def test_the_quota_hint_follows_the_instance_type_and_your_own_quota_lifts_it(asset_spec):
    eight = plan_deployment(asset_spec, parse_overrides(["instance_type=Standard_F8s_v2"]))
    assert plan_autoscale(asset_spec, eight, "1:2").maximum == 2  # 3 instances' quota x 8 cores = 24
    with pytest.raises(AssetError, match="= 32 cores"):
        plan_autoscale(asset_spec, eight, "1:3")
    assert (
        plan_autoscale(asset_spec, eight, "1:3", quota_cores=32).quota_hint == "32 cores per VM family (--quota-cores)"
    )


def test_a_gpu_family_starts_without_quota(asset_spec):
    t4 = plan_deployment(asset_spec, parse_overrides(["instance_type=Standard_NC4as_T4_v3"]))
    with pytest.raises(AssetError, match="the quota hint is 0 cores per VM family"):
        plan_autoscale(asset_spec, t4, "1:1")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["rules"].remove(rule(d, "CpuUtilizationPercentage", "decrease")),
     "no scale-in rule: instances added under load would never be released"),
    (lambda d: d["rules"].append(dict(rule(d, "RequestLatency_P95", "increase"), operator="LessThan", threshold=3000,
                                      window_minutes=30, scale="decrease")),
     "decrease on RequestLatency_P95 LessThan 3000: RequestLatency_P95 has no value while no requests come, and "
     "Azure Monitor scales in only when every scale-in rule holds: an idle deployment would never scale in to MIN"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "decrease").update(threshold=80),
     "decrease on CpuUtilizationPercentage LessThan 80 overlaps increase on CpuUtilizationPercentage GreaterThan 75"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "decrease").update(window_minutes=10),
     "its window (10 min) must be longer than increase on CpuUtilizationPercentage GreaterThan 75's (10 min)"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "decrease").update(threshold=40),
     "flaps with increase on CpuUtilizationPercentage GreaterThan 75: going from 2 instances to 1 puts 40 x 2/1 = 80 "
     "on each"),
    # The scale-in example Azure's docs carried for a long time: LessThan, but direction Increase.
    (lambda d: rule(d, "CpuUtilizationPercentage", "decrease").update(scale="increase"),
     "a scale-out (increase) rule needs operator GreaterThan or GreaterThanOrEqual"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "increase").update(cooldown_minutes=5),
     "cooldown 5 min is shorter than a new instance takes to serve (19 min: 18 min provisioning + "),
    (lambda d: rule(d, "RequestLatency_P95", "increase").update(threshold=1000),
     "increase on RequestLatency_P95 GreaterThan 1000: below what a healthy instance answers on a full batch"),
    (lambda d: rule(d, "RequestLatency_P95", "increase").update(threshold=90000),
     "at or above the request timeout (90000 ms)"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "increase").update(threshold=120),
     "a percentage threshold lies between 0 and 100"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "increase").update(window_minutes=2),
     "window_minutes must be 5 to 720"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "increase").update(metric="GpuTemperature"),
     "GpuTemperature is not a metric of online deployments"),
    (lambda d: rule(d, "CpuUtilizationPercentage", "increase").update(treshold=70),
     "autoscale.yml: rules.0.treshold: Extra inputs are not permitted"),
])  # fmt: skip
def test_a_profile_that_would_misbehave_is_refused_naming_the_rule(asset_spec, online, tmp_path, change, message):
    with pytest.raises(AssetError, match=re.escape(message)):
        plan_autoscale(asset_spec, online, "1:3", autoscale_file=profile_file(asset_spec, tmp_path, change))


def test_the_committed_profile_passes_at_every_minimum_the_quota_allows(asset_spec, online):
    for minimum in range(1, 6):
        assert plan_autoscale(asset_spec, online, f"{minimum}:5").minimum == minimum


def test_cli_refuses_autoscale_with_the_batch_endpoint(capsys):
    assert main(["deploy", "--batch", "--dry-run", "--autoscale", "1:2"]) == 2
    assert "--autoscale: online deployments only" in capsys.readouterr().err


def test_the_readme_describes_the_committed_rules_as_azure_evaluates_them(asset_spec, online):
    readme = " ".join((asset_spec.path.parent / "README.md").read_text().split())
    profile = yaml.safe_load((asset_spec.path.parent / AUTOSCALE_FILE).read_text())
    minimum, maximum = profile["capacity"]["minimum"], profile["capacity"]["maximum"]
    _, minutes = idle_scale_in_minutes(plan_autoscale(asset_spec, online).rules, minimum, maximum)
    assert "scales in only when *all* scale-in rules hold" in readme
    assert f"Idle at {maximum} instances, a deployment is back at {minimum} about {minutes} minutes" in readme
    assert "scale in by one when CPU averages under 30% for 30 minutes" in readme
    assert f"at most {profile['quota']['instances_per_deployment']} instances" in readme

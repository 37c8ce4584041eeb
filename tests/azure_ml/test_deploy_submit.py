"""The real path: MLClient(DefaultAzureCredential(), sub, rg, ws) and its calls, in order.

Only the Azure calls are replaced (a recording client); what they receive is compared with the
dry run's bodies, so --dry-run shows exactly what is sent."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from distilgpt2_asset.azure_ml import workspace as azure_workspace
from distilgpt2_asset.azure_ml.deploy import (
    dry_run_requests,
    parse_overrides,
    pin_content_digest,
    plan_deployment,
    submit,
)
from distilgpt2_asset.azure_ml.sdk import rest_body
from distilgpt2_asset.azure_ml.workspace import Workspace, ml_client, resolve_workspace
from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError

LOCATION = "westeurope"


class Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class RecordingOperations:
    """online_endpoints / online_deployments: records each call with a copy of what it was given."""

    def __init__(self, calls, kind, existing=None, fail_on=None):
        self.calls, self.kind, self.existing, self.fail_on = calls, kind, existing, fail_on

    def get(self, name):
        self.calls.append((f"{self.kind}.get", name))
        if self.existing is None:
            raise ResourceNotFoundError(f"{name} not found")
        return copy.deepcopy(self.existing)

    def begin_create_or_update(self, entity):
        self.calls.append((f"{self.kind}.begin_create_or_update", copy.deepcopy(entity)))
        if self.fail_on == self.kind:
            raise HttpResponseError("(QuotaExceeded) Not enough quota available for Standard_DS3_v2.\nDetails follow")
        return Done(entity)


class RecordingClient:
    def __init__(self, existing_endpoint=None, fail_on=None):
        self.calls = []
        self.online_endpoints = RecordingOperations(self.calls, "online_endpoints", existing_endpoint, fail_on)
        self.online_deployments = RecordingOperations(self.calls, "online_deployments", None, fail_on)


@pytest.fixture
def plan(asset_spec):
    return plan_deployment(asset_spec, parse_overrides(["instance_type=Standard_F8s_v2"]))


def test_new_endpoint_then_deployment_then_all_traffic(plan):
    client = RecordingClient()
    submit(plan, client, log=lambda _: None)
    assert [name for name, _ in client.calls] == [
        "online_endpoints.get",
        "online_endpoints.begin_create_or_update",
        "online_deployments.begin_create_or_update",
        "online_endpoints.begin_create_or_update",
    ]
    _, endpoint = client.calls[1]
    _, deployment = client.calls[2]
    _, routed = client.calls[3]
    expected = {r["step"].split(" (")[0]: r.get("body") for r in dry_run_requests(plan, None, LOCATION)}
    assert rest_body(endpoint, LOCATION) == expected["create endpoint"]
    assert rest_body(routed, LOCATION) == expected["route all traffic"]
    assert routed.traffic == {"blue": 100}
    # The SDK replaces code and environment by the ids of what it uploads; the rest is the dry run's.
    sent = rest_body(_with_uploaded_ids(deployment), LOCATION)
    dry = expected["create deployment"]
    for body in (sent, dry):
        body["properties"].pop("codeConfiguration")
        body["properties"].pop("environmentId")
    assert sent == dry
    assert deployment.instance_type == "Standard_F8s_v2"
    assert deployment.code_configuration.code == "../../scoring"  # uploaded by the SDK itself


def _with_uploaded_ids(deployment):
    deployment = copy.deepcopy(deployment)
    deployment.code_configuration.code = "azureml:/code/1"
    deployment.environment = "azureml:/environment/1"
    return deployment


def test_existing_endpoint_is_kept_and_only_its_traffic_changes(plan):
    existing = copy.deepcopy(plan.endpoint)
    existing.tags = {"owner": "platform-team"}
    existing.traffic = {"old": 100}
    client = RecordingClient(existing_endpoint=existing)
    submit(plan, client, log=lambda _: None)
    assert [name for name, _ in client.calls] == [
        "online_endpoints.get",
        "online_deployments.begin_create_or_update",
        "online_endpoints.begin_create_or_update",
    ]
    _, routed = client.calls[-1]
    assert routed.traffic == {"blue": 100}
    assert routed.tags == {"owner": "platform-team"}


def test_azure_failure_becomes_one_line(plan):
    client = RecordingClient(fail_on="online_deployments")
    with pytest.raises(
        AssetError, match=r"^Azure ML: \(QuotaExceeded\) Not enough quota available for Standard_DS3_v2\.$"
    ):
        submit(plan, client, log=lambda _: None)


def test_a_missing_sign_in_and_a_refused_one_are_told_apart(plan):
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError

    class Failing(RecordingClient):
        def __init__(self, error):
            super().__init__()
            self.online_endpoints.get = lambda name: (_ for _ in ()).throw(error)

    with pytest.raises(AssetError, match=r"^not signed in to Azure: .*`az login`$"):
        submit(plan, Failing(CredentialUnavailableError("no credential")), log=lambda _: None)
    refused = ClientAuthenticationError("InvalidAuthenticationTokenTenant")
    refused.status_code = 401
    with pytest.raises(AssetError, match=r"^Azure ML workspace 'ws' did not accept this identity's token \(HTTP 401\)"):
        submit(plan, Failing(refused), log=lambda _: None, where="Azure ML workspace 'ws'")


def test_ml_client_uses_default_azure_credential_and_the_workspace(monkeypatch):
    made = {}

    class FakeCredential:
        pass

    def fake_client(credential, subscription_id, resource_group_name, workspace_name):
        made.update(credential=credential, args=(subscription_id, resource_group_name, workspace_name))
        return "client"

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr("azure.ai.ml.MLClient", fake_client)
    assert ml_client(Workspace("sub", "rg", "ws")) == "client"
    assert isinstance(made["credential"], FakeCredential)
    assert made["args"] == ("sub", "rg", "ws")


def test_workspace_flags_win_over_environment_variables():
    environ = {"AZURE_SUBSCRIPTION_ID": "env-sub", "AZURE_RESOURCE_GROUP": "env-rg", "AZUREML_WORKSPACE_NAME": "env-ws"}
    assert resolve_workspace({"workspace_name": "flag-ws"}, environ) == Workspace("env-sub", "env-rg", "flag-ws")
    assert resolve_workspace({}, {}, required=False) is None
    with pytest.raises(AssetError, match="--subscription-id or AZURE_SUBSCRIPTION_ID"):
        resolve_workspace({}, {})


def test_cli_deploys_through_the_client_it_makes(monkeypatch, capsys):
    client = RecordingClient()
    made = []
    monkeypatch.setattr(azure_workspace, "ml_client", lambda workspace: made.append(workspace) or client)
    looked_up = []  # the registry version's properties: the one other Azure call
    monkeypatch.setattr(
        "distilgpt2_asset.commands.deploy.registry_properties", lambda *version: looked_up.append(version) or {}
    )
    argv = [
        "deploy",
        "--subscription-id",
        "sub",
        "--resource-group",
        "rg",
        "--workspace-name",
        "ws",
        "--endpoint-name",
        "textgen-ci",
        "--set",
        "instance_count=2",
    ]
    assert main(argv) == 0
    assert made == [Workspace("sub", "rg", "ws")] and looked_up == [("azureml", "distilgpt2", "15")]
    _, deployment = client.calls[2]
    assert (deployment.endpoint_name, deployment.instance_count) == ("textgen-ci", 2)
    assert "az ml online-endpoint invoke --name textgen-ci" in capsys.readouterr().out


def test_a_published_version_is_pinned_to_the_content_its_registry_records(asset_spec):
    plan = plan_deployment(
        asset_spec, parse_overrides(["instance_type=Standard_F8s_v2"]), model_registry="contoso-models"
    )
    asked, said = [], []

    def properties_of(registry, name, version):
        asked.append((registry, name, version))
        return {"content_sha256": "ab" * 32, "SHA": asset_spec.revision}

    pin_content_digest(plan, properties_of, said.append)
    assert asked == [("contoso-models", asset_spec.name, asset_spec.version)]
    assert plan.deployment.environment_variables["TEXTGEN_EXPECTED_CONTENT_SHA256"] == "ab" * 32
    client = RecordingClient()
    submit(plan, client, log=lambda line: None)
    sent = next(entity for call, entity in client.calls if call == "online_deployments.begin_create_or_update")
    assert (
        sent.environment_variables["TEXTGEN_EXPECTED_CONTENT_SHA256"] == "ab" * 32
        and "pinned to content sha256" in said[0]
    )


def test_microsofts_version_records_no_digest_and_the_deployment_says_how_to_pin_it(asset_spec):
    plan = plan_deployment(asset_spec, model_registry="azureml")
    said = []
    pin_content_digest(plan, lambda registry, name, version: {"SHA": asset_spec.revision}, said.append)
    assert "TEXTGEN_EXPECTED_CONTENT_SHA256" not in plan.deployment.environment_variables
    assert (
        "records no content digest" in said[0]
        and "--set environment_variables.TEXTGEN_EXPECTED_CONTENT_SHA256=" in said[0]
    )


def test_an_explicit_pin_is_kept(asset_spec):
    plan = plan_deployment(
        asset_spec, parse_overrides([f"environment_variables.TEXTGEN_EXPECTED_CONTENT_SHA256={'cd' * 32}"])
    )
    pin_content_digest(plan, lambda *args: pytest.fail("no registry look-up when the pin is given"), print)
    assert plan.deployment.environment_variables["TEXTGEN_EXPECTED_CONTENT_SHA256"] == "cd" * 32


def test_the_content_pin_is_worked_out_without_touching_the_deployment():
    from distilgpt2_asset.azure_ml.deploy import content_pin

    variables = {"WORKER_COUNT": "1"}
    model = "azureml://registries/contoso-models/models/distilgpt2/versions/15"
    pinned, said = content_pin(model, True, variables, lambda *version: {"content_sha256": "ab" * 32})
    assert pinned == {"WORKER_COUNT": "1", "TEXTGEN_EXPECTED_CONTENT_SHA256": "ab" * 32} and "pinned" in said
    assert variables == {"WORKER_COUNT": "1"}
    assert content_pin(model, False, variables, lambda *version: {"content_sha256": "ab" * 32}) == (variables, "")
    assert content_pin("azureml:distilgpt2:15", True, variables, lambda *version: {}) == (variables, "")

"""`distilgpt2-asset deploy --batch`: jobs/deploy/batch-*.yml through the real azure.ai.ml loaders ->
checked entities -> the exact requests; submit through MLClient's operations, in order."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_batch_deployment

from distilgpt2_asset.azure_ml import workspace as azure_workspace
from distilgpt2_asset.azure_ml.batch import BATCH_DEPLOYMENT_FILE, dry_run_requests, plan_batch, submit_batch
from distilgpt2_asset.azure_ml.deploy import model_reference, parse_overrides
from distilgpt2_asset.azure_ml.workspace import Workspace
from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.spec import load_spec
from distilgpt2_asset.validate import validate_yaml_file

from .test_deploy_submit import RecordingOperations  # the online path's recorder of MLClient operation groups

WORKSPACE = Workspace("0000-sub", "rg-ml", "ws-ml")
ARM = "/subscriptions/0000-sub/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-ml"


@pytest.fixture(scope="module")
def plan(asset_spec):
    return plan_batch(asset_spec, model_registry="azureml")


def test_the_batch_yamls_pass_validate_with_the_sdks_own_pre_submit_checks(asset_spec):
    deploy = asset_spec.path.parent / "jobs" / "deploy"
    for name in ("batch-endpoint.yml", "batch-deployment.yml", "batch-cluster.yml"):
        assert validate_yaml_file(deploy / name, asset_spec) == [], name


def az_cli_loader(path):
    """The loader `az ml batch-deployment create --file` picks by the YAML's `type` (as the az ml
    extension and Ansible's azure.azcollection azure_rm_mlbatchdeployment do)."""
    from azure.ai.ml.entities._load_functions import (
        load_model_batch_deployment,
        load_pipeline_component_batch_deployment,
    )

    kind = yaml.safe_load(Path(path).read_text()).get("type")
    return {"model": load_model_batch_deployment, "pipeline": load_pipeline_component_batch_deployment}.get(
        kind, load_batch_deployment
    )


def _rest(deployment) -> dict:
    """The deployment's REST body as the SDK builds it (its code folder not yet uploaded)."""
    return deployment._to_rest_object(location="westeurope").as_dict()


def test_the_batch_deployment_loads_with_the_public_loader_and_the_az_clis(asset_spec):
    path = asset_spec.path.parent / BATCH_DEPLOYMENT_FILE
    public, cli = load_batch_deployment(path), az_cli_loader(path)(path)
    assert public.output_action == cli.output_action == "append_row"
    assert _rest(public) == _rest(cli)


def test_it_creates_the_deployment_microsofts_model_batch_deployment_form_creates(asset_spec, tmp_path):
    """Microsoft's samples' form (modelBatchDeployment.schema.json: `type: model`, a `settings:` block)
    of the same file gives the same REST body."""
    from azure.ai.ml.entities._load_functions import load_model_batch_deployment

    path = asset_spec.path.parent / BATCH_DEPLOYMENT_FILE
    ours = yaml.safe_load(path.read_text())
    ours["code_configuration"]["code"] = str(asset_spec.path.parent / "scoring")
    ours["environment"]["conda_file"] = str(asset_spec.path.parent / "environments" / "batch" / "conda.yml")
    deployment_fields = ("name", "endpoint_name", "model", "code_configuration", "environment", "compute", "resources")
    samples_form = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json",
        "type": "model",
        **{key: ours[key] for key in deployment_fields},
        "settings": {k: v for k, v in ours.items() if k not in (*deployment_fields, "$schema")},
    }
    (tmp_path / "ours.yml").write_text(yaml.safe_dump(ours))
    (tmp_path / "samples.yml").write_text(yaml.safe_dump(samples_form))
    assert _rest(load_batch_deployment(tmp_path / "ours.yml")) == _rest(
        load_model_batch_deployment(tmp_path / "samples.yml")
    )


def test_the_deployment_is_a_model_deployment_of_spec_yamls_version_with_the_scoring_of_the_online_path(
    asset_spec, plan
):
    deployment = plan.deployment
    assert (deployment.type, deployment.model) == ("model", model_reference(asset_spec, "azureml"))
    assert (deployment.code_configuration.code, deployment.code_configuration.scoring_script) == (
        "../../scoring",
        "batch_score.py",
    )
    settings = deployment  # at the top level of the batchDeployment form
    assert (settings.output_action, settings.output_file_name, settings.error_threshold) == (
        "append_row",
        "predictions.jsonl",
        0,
    )
    assert settings.max_concurrency_per_instance == 1 and settings.mini_batch_size >= 1
    assert settings.retry_settings.max_retries >= 1
    assert plan.cluster.size == asset_spec.allow_list("inference")[0] and plan.cluster.min_instances == 0


def test_the_batch_environment_is_the_online_one_plus_the_batch_drivers_packages(asset_spec, plan):
    root = asset_spec.path.parent

    def pip(path):
        conda = yaml.safe_load(path.read_text())
        return next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))

    online, batch = (
        pip(root / "environments" / "inference" / "conda.yml"),
        pip(root / "environments" / "batch" / "conda.yml"),
    )
    # azureml-dataset-runtime caps numpy below 2.3.3 on Linux: the one pin that differs.
    assert [line for line in batch if not line.startswith("numpy==")][: len(online) - 1] == [
        line for line in online if not line.startswith("numpy==")
    ]
    assert set(batch) - set(online) == {
        "numpy==2.3.2",
        "azureml-core==1.61.0.post4",
        "azureml-dataset-runtime[fuse]==1.62.0.post1",
    }
    assert (
        plan.deployment.environment.image
        == yaml.safe_load((root / "environments" / "inference" / "environment.yml").read_text())["image"]
    )


def test_dry_run_is_every_request_in_order_with_the_bodies_the_sdk_sends(plan):
    requests = dry_run_requests(plan, WORKSPACE, "westeurope")
    assert [r["step"] for r in requests] == [
        "create compute cluster (skipped when it exists)",
        "create batch endpoint (skipped when it exists)",
        "upload code",
        "create environment",
        "create batch deployment",
        "make it the default deployment",
    ]
    cluster, endpoint, _, _, deployment, default = requests
    assert cluster["url"] == f"{ARM}/computes/distilgpt2-batch?api-version=2023-08-01-preview"
    assert cluster["body"]["properties"]["properties"]["vmSize"] == "Standard_DS3_v2"
    assert endpoint["url"] == f"{ARM}/batchEndpoints/distilgpt2-batch?api-version=2023-10-01"
    assert endpoint["body"]["properties"]["authMode"] == "aadToken"
    assert (
        deployment["url"] == f"{ARM}/batchEndpoints/distilgpt2-batch/deployments/textgen?api-version=2024-01-01-preview"
    )
    properties = deployment["body"]["properties"]
    assert properties["compute"] == f"{ARM}/computes/distilgpt2-batch"
    assert (properties["outputAction"], properties["miniBatchSize"], properties["retrySettings"]["timeout"]) == (
        "AppendRow",
        1,
        "PT1H",
    )
    assert properties["codeConfiguration"]["scoringScript"] == "batch_score.py"
    assert default["body"]["properties"]["defaults"] == {"deploymentName": "textgen"}


def test_set_overrides_and_names_reach_the_deployment_as_az_ml_applies_them(asset_spec):
    plan = plan_batch(
        asset_spec,
        parse_overrides(["mini_batch_size=4", "resources.instance_count=1"]),
        endpoint_name="bulk-ci",
        deployment_name="textgen-v2",
        model_registry="contoso-models",
    )
    body = dry_run_requests(plan, WORKSPACE, "westeurope")[4]["body"]["properties"]
    assert (body["miniBatchSize"], body["resources"]["instanceCount"]) == (4, 1)
    assert body["model"]["assetId"] == model_reference(asset_spec, "contoso-models")
    assert (plan.endpoint.name, plan.deployment.name) == ("bulk-ci", "textgen-v2")


@pytest.mark.parametrize(
    "pairs, message",
    [
        (
            ["compute=azureml:gpu-cluster"],
            "compute 'gpu-cluster' is not the cluster jobs/deploy/batch-cluster.yml creates \\(distilgpt2-batch\\)",
        ),
        (
            ["resources.instance_count=5"],
            "resources.instance_count 5: the cluster distilgpt2-batch has 1 to 2 instances",
        ),
        (
            ["output_action=summary_only", "output_file_name="],
            "output_action is summary_only; batch scoring's rows need append_row",
        ),
        (
            ["retry_settings.timeout=300"],
            "TEXTGEN_REQUEST_TIMEOUT_MS 600000 \\(a row's deadline\\) must be below retry_settings.timeout \\(300 s",
        ),
        (
            ['environment_variables.BATCH_PARAMS={"max_new_tokens": 5000}'],
            "environment_variables: BATCH_PARAMS.max_new_tokens must be between 1 and 1024",
        ),
        (["environment_variables.BATCH_PARAMS=[1]"], "environment_variables: BATCH_PARAMS must be a JSON object"),
        (["environment_variables.TEXTGEN_MAX_BATCH_SZE=4"], "unknown serving setting\\(s\\) TEXTGEN_MAX_BATCH_SZE"),
        (["model=azureml://registries/azureml/models/gpt2/versions/1"], "is not defined by spec.yaml"),
        (["code_configuration.scoring_script=missing.py"], "scoring script .*missing.py does not exist"),
    ],
)
def test_refusals_name_the_problem_before_any_azure_call(asset_spec, pairs, message):
    with pytest.raises(AssetError, match=message):
        plan_batch(asset_spec, parse_overrides(pairs))


def test_a_cluster_size_outside_the_inference_allow_list_is_refused(asset_spec, tmp_path):
    for name in ("spec.yaml", "model", "jobs", "scoring", "environments"):
        source = asset_spec.path.parent / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    cluster = tmp_path / "jobs" / "deploy" / "batch-cluster.yml"
    cluster.write_text(cluster.read_text().replace("size: Standard_DS3_v2", "size: Standard_DS2_v2"))
    with pytest.raises(
        AssetError,
        match="jobs/deploy/batch-cluster.yml size Standard_DS2_v2 is not in spec.yaml's inference_compute_allow_list",
    ):
        plan_batch(load_spec(tmp_path / "spec.yaml"))


class RecordingClient:
    def __init__(self, cluster=None, endpoint=None):
        self.calls = []
        self.compute = RecordingOperations(self.calls, "compute", cluster)
        self.batch_endpoints = RecordingOperations(self.calls, "batch_endpoints", endpoint)
        self.batch_deployments = RecordingOperations(self.calls, "batch_deployments")


def test_submit_makes_cluster_endpoint_deployment_then_the_default_as_the_dry_run_shows(plan):
    client = RecordingClient()
    submit_batch(plan, client, log=lambda _: None)
    assert [name for name, _ in client.calls] == [
        "compute.get",
        "compute.begin_create_or_update",
        "batch_endpoints.get",
        "batch_endpoints.begin_create_or_update",
        "batch_deployments.begin_create_or_update",
        "batch_endpoints.begin_create_or_update",
    ]
    expected = {r["step"]: r.get("body") for r in dry_run_requests(plan, None, "westeurope")}
    from distilgpt2_asset.azure_ml.sdk import rest_body

    _, defaulted = client.calls[-1]
    assert rest_body(defaulted, "westeurope") == expected["make it the default deployment"]
    _, deployment = client.calls[4]
    assert deployment.code_configuration.code == "../../scoring"  # uploaded by the SDK itself


def test_an_existing_cluster_and_endpoint_are_kept_and_only_the_default_changes(plan):
    endpoint = copy.deepcopy(plan.endpoint)
    endpoint.tags = {"owner": "platform-team"}
    client = RecordingClient(cluster=plan.cluster, endpoint=endpoint)
    submit_batch(plan, client, log=lambda _: None)
    assert [name for name, _ in client.calls] == [
        "compute.get",
        "batch_endpoints.get",
        "batch_deployments.begin_create_or_update",
        "batch_endpoints.begin_create_or_update",
    ]
    _, defaulted = client.calls[-1]
    assert defaulted.tags == {"owner": "platform-team"} and defaulted.defaults == {"deployment_name": "textgen"}


def test_the_deployment_is_pinned_to_the_content_its_registry_version_records(asset_spec):
    from distilgpt2_asset.azure_ml.deploy import pin_content_digest

    plan = plan_batch(asset_spec, model_registry="contoso-models")
    asked = []
    digest = "ab" * 32
    pin_content_digest(plan, lambda *version: asked.append(version) or {"content_sha256": digest}, log=lambda _: None)
    assert asked == [("contoso-models", asset_spec.name, asset_spec.version)]
    variables = dry_run_requests(plan, WORKSPACE, "westeurope")[4]["body"]["properties"]["environmentVariables"]
    assert variables["TEXTGEN_EXPECTED_CONTENT_SHA256"] == digest and variables["BATCH_TEXT_COLUMN"] == "text"


def test_cli_dry_run_prints_the_batch_requests_offline(capsys, monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["deploy", "--batch", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[-1]["step"] == "make it the default deployment"
    assert "model: azureml://registries/azureml/models/distilgpt2/versions/15" in err


def test_cli_deploys_the_batch_endpoint_through_the_client_it_makes(monkeypatch, capsys):
    client = RecordingClient()
    monkeypatch.setattr(azure_workspace, "ml_client", lambda workspace: client)
    looked_up = []  # the registry version's properties, for the content pin
    monkeypatch.setattr(
        "distilgpt2_asset.commands.deploy.registry_properties", lambda *version: looked_up.append(version) or {}
    )
    argv = [
        "deploy",
        "--batch",
        "--subscription-id",
        "sub",
        "--resource-group",
        "rg",
        "--workspace-name",
        "ws",
        "--endpoint-name",
        "bulk-ci",
    ]
    assert main(argv) == 0
    assert client.calls[-1][1].name == "bulk-ci" and looked_up == [("azureml", "distilgpt2", "15")]
    assert "az ml batch-endpoint invoke --name bulk-ci --input jobs/deploy/batch-sample" in capsys.readouterr().out


def test_the_sample_input_reads_as_rows_without_problems(asset_spec):
    from distilgpt2_scoring.batch import read_rows

    sample = asset_spec.path.parent / "jobs" / "deploy" / "batch-sample"
    rows = [row for path in sorted(sample.iterdir()) for row in read_rows(path, path.name)]
    assert rows and all(row.problem is None for row in rows)
    assert (asset_spec.path.parent / BATCH_DEPLOYMENT_FILE).is_file()

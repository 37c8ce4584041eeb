"""`distilgpt2-asset deploy`: YAML + --set + spec.yaml -> checked entities -> the exact requests.

Every refusal comes before any Azure call, as one line; --dry-run needs no credentials."""

from __future__ import annotations

import json
import shutil

import pytest

from distilgpt2_asset.azure_ml.deploy import (
    dry_run_requests,
    model_reference,
    parse_overrides,
    plan_deployment,
)
from distilgpt2_asset.azure_ml.profile import ENGINE_SPEEDS_FILE, lowest_measured_speed
from distilgpt2_asset.azure_ml.workspace import Workspace
from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.spec import load_spec

WORKSPACE = Workspace("0000-sub", "rg-ml", "ws-ml")
ARM = "/subscriptions/0000-sub/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/ws-ml"


def requests_for(spec, *pairs, **kwargs):
    plan = plan_deployment(spec, parse_overrides(list(pairs)), **kwargs)
    return {r["step"].split(" (")[0]: r for r in dry_run_requests(plan, WORKSPACE, "westeurope")}


def test_dry_run_of_the_defaults_is_every_request_with_its_body(asset_spec):
    sent = requests_for(asset_spec)
    assert list(sent) == [
        "create endpoint",
        "upload code",
        "create environment",
        "create deployment",
        "route all traffic",
    ]

    endpoint = sent["create endpoint"]
    assert endpoint["url"] == f"{ARM}/onlineEndpoints/distilgpt2-textgen?api-version=2022-02-01-preview"
    assert endpoint["body"]["location"] == "westeurope"
    assert endpoint["body"]["properties"]["authMode"] == "Key"
    assert endpoint["body"]["properties"]["traffic"] == {}

    assert sent["upload code"]["source"].endswith("/scoring")
    assert len(sent["upload code"]["hash_sha256"]) == 64

    environment = sent["create environment"]
    assert "/environments/CliV2AnonymousEnvironment/versions/" in environment["url"]
    assert (
        environment["body"]["properties"]["image"] == "mcr.microsoft.com/azureml/curated/minimal-py311-inference:latest"
    )
    assert "ctranslate2==4.8.5" in environment["body"]["properties"]["condaFile"]
    assert environment["body"]["properties"]["isAnonymous"] is True

    deployment = sent["create deployment"]
    assert (
        deployment["url"] == f"{ARM}/onlineEndpoints/distilgpt2-textgen/deployments/blue?api-version=2023-04-01-preview"
    )
    body = deployment["body"]
    props = body["properties"]
    assert body["sku"] == {"name": "Default", "capacity": 1}
    assert props["model"] == model_reference(asset_spec, "azureml")
    assert props["instanceType"] == asset_spec.allow_list("inference")[0]
    assert props["endpointComputeType"] == "Managed"
    assert props["codeConfiguration"]["scoringScript"] == "score.py"
    # The plain ARM id of the environment version, as the SDK sends it (no "azureml:" prefix).
    assert props["environmentId"] == environment["url"].split("?")[0]
    assert props["environmentId"].startswith("/subscriptions/0000-sub/resourceGroups/rg-ml/")
    assert props["requestSettings"] == {"maxConcurrentRequestsPerInstance": 16, "requestTimeout": "PT1M30S"}
    assert props["readinessProbe"]["initialDelay"] == "PT30S"
    assert props["livenessProbe"]["initialDelay"] == "PT5M"
    assert props["environmentVariables"]["TEXTGEN_ENGINE"] == "auto"
    assert props["environmentVariables"]["TEXTGEN_REQUEST_TIMEOUT_MS"] == "90000"
    assert props["environmentVariables"]["GUNICORN_CMD_ARGS"].startswith("--threads 16 ")

    traffic = sent["route all traffic"]
    assert traffic["url"] == endpoint["url"]
    assert traffic["body"]["properties"]["traffic"] == {"blue": 100}


def test_set_overrides_reach_the_bodies_as_az_ml_applies_them(asset_spec):
    sent = requests_for(
        asset_spec,
        "instance_type=Standard_F8s_v2",
        "instance_count=3",
        "request_settings.request_timeout_ms=120000",
        "environment_variables.TEXTGEN_ENGINE=transformers",
        "environment_variables.TEXTGEN_MAX_BATCH_SIZE=2",
        "environment_variables.TEXTGEN_MAX_NEW_TOKENS=128",
        endpoint_name="my-textgen",
        deployment_name="green",
    )
    props = sent["create deployment"]["body"]["properties"]
    assert props["instanceType"] == "Standard_F8s_v2"
    assert sent["create deployment"]["body"]["sku"]["capacity"] == 3
    assert props["requestSettings"]["requestTimeout"] == "PT2M"
    assert props["environmentVariables"]["TEXTGEN_REQUEST_TIMEOUT_MS"] == "120000"  # one value, written to both
    assert props["environmentVariables"]["TEXTGEN_ENGINE"] == "transformers"
    assert props["environmentVariables"]["TEXTGEN_MAX_QUEUE"] == "128"  # untouched
    assert sent["create deployment"]["url"].endswith(
        "/onlineEndpoints/my-textgen/deployments/green?api-version=2023-04-01-preview"
    )
    assert "/onlineEndpoints/my-textgen?" in sent["create endpoint"]["url"]
    assert sent["route all traffic"]["body"]["properties"]["traffic"] == {"green": 100}


def test_model_registry_points_at_spec_yaml_version_in_that_registry(asset_spec):
    props = requests_for(asset_spec, model_registry="contoso-models")["create deployment"]["body"]["properties"]
    assert (
        props["model"] == f"azureml://registries/contoso-models/models/{asset_spec.name}/versions/{asset_spec.version}"
    )


def test_a_bad_model_registry_name_is_refused(asset_spec):
    with pytest.raises(AssetError, match="bad Azure ML registry name 'my models'"):
        plan_deployment(asset_spec, model_registry="my models")


def test_no_code_mlflow_variant_sends_neither_code_nor_environment(asset_spec):
    sent = requests_for(asset_spec, deployment_file="jobs/deploy/online-deployment-mlflow.yml")
    assert list(sent) == ["create endpoint", "create deployment", "route all traffic"]
    props = sent["create deployment"]["body"]["properties"]
    assert "codeConfiguration" not in props and "environmentId" not in props
    assert props["model"] == model_reference(asset_spec, "azureml")


def test_dry_run_without_workspace_settings_shows_placeholders(asset_spec):
    plan = plan_deployment(asset_spec)
    first = dry_run_requests(plan, None, None)[0]
    assert first["url"].startswith("/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/")
    assert first["body"]["location"] == "{workspaceLocation}"


REFUSALS = {
    "outside the allow-list": (["instance_type=Standard_DS2_v2"], "not in spec.yaml's inference_compute_allow_list"),
    "no such SKU": (["instance_type=Standard_Nope"], "not in spec.yaml's inference_compute_allow_list"),
    "zero instances": (["instance_count=0"], "instance_count must be at least 1"),
    "timeout too short": (["request_settings.request_timeout_ms=10000"], "request_timeout_ms 10000 is too short"),
    "timeout over Azure's max": (["request_settings.request_timeout_ms=200000"], "over Azure's maximum 180000"),
    "slower engine, same timeout": (
        ["environment_variables.TEXTGEN_ENGINE=transformers", "environment_variables.TEXTGEN_MAX_NEW_TOKENS=1024"],
        "too short: 1024 new tokens at ",  # the figure: test_timeout_rule_uses_the_lowest_measured_speed
    ),
    "two deadlines": (
        ["environment_variables.TEXTGEN_REQUEST_TIMEOUT_MS=30000"],
        "TEXTGEN_REQUEST_TIMEOUT_MS is 30000 but request_settings.request_timeout_ms is 90000",
    ),
    "openvino on a GPU": (
        ["instance_type=Standard_NC4as_T4_v3", "environment_variables.TEXTGEN_ENGINE=openvino"],
        "runs on CPUs only",
    ),
    "other model version": (
        ["model=azureml://registries/azureml/models/distilgpt2/versions/14"],
        "not defined by spec.yaml",
    ),
    "other model": (["model=azureml:gpt2:15"], "not defined by spec.yaml"),
    "model by label": (
        ["model=azureml://registries/azureml/models/distilgpt2/labels/latest"],
        "model must reference a registered version",
    ),
    "model not a reference": (
        ["model=./local-folder"],
        "online-deployment.yml: model._schema: In order to specify an existing model",
    ),
    "concurrency != threads": (["request_settings.max_concurrent_requests_per_instance=4"], "make them equal"),
    "bad thread count": (
        ["environment_variables.GUNICORN_CMD_ARGS=--threads x"],
        "GUNICORN_CMD_ARGS --threads: argument --threads: invalid int value: 'x'",
    ),
    "zero workers": (
        ["environment_variables.WORKER_COUNT=0"],
        "WORKER_COUNT (0) and GUNICORN_CMD_ARGS --threads (16) must be at least 1",
    ),
    "threads as --threads=N": (
        ["environment_variables.GUNICORN_CMD_ARGS=--threads=8"],
        "is 16 but the server runs 8 at once",
    ),
    "bad serving value": (
        ["environment_variables.TEXTGEN_MAX_BATCH_SIZE=0"],
        "TEXTGEN_MAX_BATCH_SIZE: Input should be greater than or equal to 1",
    ),
    "a value no member of its union takes": (
        ["environment_variables.TEXTGEN_QUANTIZATION_GROUP=-1"],
        "TEXTGEN_QUANTIZATION_GROUP: Input should be 'auto' or Input should be greater than or equal to 0",
    ),
    "an unknown precision": (
        ["environment_variables.TEXTGEN_PRECISION=fp8"],
        "TEXTGEN_PRECISION: Input should be 'auto' or Input should be 'f32', 'bf16' or 'f16'",
    ),
    "settings that contradict": (
        ["environment_variables.TEXTGEN_MAX_QUEUE=8"],
        "TEXTGEN_*: Value error, max_prompts (32) cannot exceed max_queue (8)",
    ),
    "unknown serving setting": (
        ["environment_variables.TEXTGEN_MAX_TOKENS=9"],
        "unknown serving setting(s) TEXTGEN_MAX_TOKENS",
    ),
    "not an integer": (["instance_count=two"], "instance_count: Not a valid integer."),
    "unknown field": (["instance_typo=Standard_F8s_v2"], "instance_typo: Unknown field."),
    "missing scoring script": (["code_configuration.scoring_script=nope.py"], "scoring script"),
    "retired SKU": (
        ["instance_type=Standard_NC6s_v3"],
        "instance_type Standard_NC6s_v3 was retired on 2025-09-30; the nearest live SKU of the inference allow-list "
        "is Standard_NC8as_T4_v3",
    ),
}


@pytest.mark.parametrize("pairs, message", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_name_the_problem(asset_spec, pairs, message):
    with pytest.raises(AssetError) as refused:
        plan_deployment(asset_spec, parse_overrides(pairs))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_bad_endpoint_name_is_refused_with_the_naming_rule(asset_spec):
    with pytest.raises(AssetError, match="endpoint name '9-lives': 3-32 letters"):
        plan_deployment(asset_spec, endpoint_name="9-lives")


def test_set_without_equals_is_refused():
    with pytest.raises(AssetError, match="expected key=value"):
        parse_overrides(["instance_type"])


def test_sku_below_min_sku_spec_is_refused(asset_spec, tmp_path):
    # Impossible with the shipped spec (min-sku-spec is the allow-list's per-field minimum), so
    # raise the minimum in a copy of the asset to see the rule fire.
    for name in ("spec.yaml", "model", "jobs", "scoring", "environments"):
        source = asset_spec.path.parent / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        spec_file.read_text().replace("inferenceMinSkuSpec: 2|0|8|28", "inferenceMinSkuSpec: 8|0|8|28")
    )
    with pytest.raises(
        AssetError, match=r"Standard_DS3_v2 \(4\|0\|14\|28\) is below inference-min-sku-spec 8\|0\|8\|28"
    ):
        plan_deployment(load_spec(spec_file))


def test_timeout_rule_uses_the_lowest_measured_speed(asset_spec):
    speeds = json.loads((asset_spec.path.parent / ENGINE_SPEEDS_FILE).read_text())["classes"]
    assert len(speeds) >= 2, "figures for more than one CPU class"
    for engine, batch in (("openvino", 8), ("ctranslate2", 8), ("transformers", 1)):
        figure, where = lowest_measured_speed(asset_spec, engine, batch)
        at_batch = [
            {name: rates[str(batch)] for name, rates in measured["engines"].items() if str(batch) in rates}
            for measured in speeds.values()
            if not measured.get("under_load")
        ]
        measured_there = [rates.get(engine, min(rates.values())) for rates in at_batch]
        assert figure == min(measured_there) and engine in where
    profile = plan_deployment(asset_spec).profile  # the default: OpenVINO on the smallest CPU SKU
    assert (
        profile.engine == "openvino"
        and profile.tokens_per_second == lowest_measured_speed(asset_spec, "openvino", 8)[0] / 16
    )
    gpu = plan_deployment(asset_spec, parse_overrides(["instance_type=Standard_NC4as_T4_v3"])).profile
    assert (
        gpu.engine == "ctranslate2"
        and gpu.tokens_per_second == lowest_measured_speed(asset_spec, "ctranslate2", 8)[0] / 16 / 2
    )


# the command line ---------------------------------------------------------------------------------


def test_cli_dry_run_prints_the_requests_as_json_without_credentials(capsys, monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["deploy", "--dry-run", "--set", "instance_type=Standard_F8s_v2", "--location", "eastus"]) == 0
    sent = json.loads(capsys.readouterr().out)
    deployment = next(r for r in sent if r["step"] == "create deployment")
    assert deployment["body"]["properties"]["instanceType"] == "Standard_F8s_v2"
    assert deployment["body"]["location"] == "eastus"


@pytest.mark.parametrize(
    "flags, served, origin",
    [
        ([], "azureml", "the version Microsoft publishes (registry azureml, as the model card shows)"),
        (
            ["--model-registry", "contoso-models"],
            "contoso-models",
            "your own version in registry contoso-models (what `distilgpt2-asset publish --registry contoso-models` "
            "uploaded)",
        ),
    ],
)
def test_cli_says_which_model_it_serves(capsys, asset_spec, flags, served, origin):
    assert main(["deploy", "--dry-run", *flags]) == 0
    captured = capsys.readouterr()
    deployment = next(r for r in json.loads(captured.out) if r["step"] == "create deployment")
    assert deployment["body"]["properties"]["model"] == model_reference(asset_spec, served)
    assert captured.err.splitlines() == [
        f"model: {model_reference(asset_spec, served)}, {origin}",
        "note: Standard_DS3_v2: retirement announced for 2028-05-01",  # the YAML's default SKU
    ]


def test_cli_model_from_set_is_kept_and_cannot_be_combined_with_model_registry(capsys):
    assert main(["deploy", "--dry-run", "--set", "model=azureml:distilgpt2:15"]) == 0
    captured = capsys.readouterr()
    deployment = next(r for r in json.loads(captured.out) if r["step"] == "create deployment")
    assert deployment["body"]["properties"]["model"] == "distilgpt2:15"  # the loader drops "azureml:"
    assert captured.err.startswith("model: distilgpt2:15, as --set model= names it\n")
    assert main(["deploy", "--dry-run", "--model-registry", "x1", "--set", "model=azureml:distilgpt2:15"]) == 2
    assert "--model-registry and --set model=... both choose the model" in capsys.readouterr().err


def test_cli_refusal_is_one_line_and_exit_code_2(capsys):
    assert main(["deploy", "--dry-run", "--set", "instance_type=Standard_DS2_v2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: instance_type Standard_DS2_v2 is not in") and err.count("\n") == 1


def test_cli_without_workspace_settings_refuses_before_any_call(capsys, monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "0000-sub")
    assert main(["deploy"]) == 2
    err = capsys.readouterr().err
    assert (
        "missing Azure ML workspace settings: --resource-group or AZURE_RESOURCE_GROUP; --workspace-name or "
        "AZUREML_WORKSPACE_NAME" in err
    )

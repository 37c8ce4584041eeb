"""The deployment YAMLs: they load with the real azure.ai.ml loaders and agree with spec.yaml,
the environments, the scoring settings and the model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.ai.ml import load_environment, load_online_deployment, load_online_endpoint

from distilgpt2_asset.azure_ml.deploy import DEPLOYMENT_FILE, ENDPOINT_FILE, model_reference
from distilgpt2_asset.azure_ml.profile import serving_profile
from distilgpt2_asset.validate import asset_yaml_files, validate_yaml_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "jobs" / "deploy"
CUSTOM = ROOT / DEPLOYMENT_FILE
NO_CODE = DEPLOY / "online-deployment-mlflow.yml"
DEPLOYMENTS = [CUSTOM, NO_CODE]


def test_every_azure_yaml_of_jobs_and_environments_passes_validate(asset_spec):
    ours = [p for p in asset_yaml_files(ROOT) if p.parent.name in ("deploy", "inference", "training", "batch")]
    assert {p.name for p in ours} >= {
        "online-endpoint.yml", "online-deployment.yml", "online-deployment-mlflow.yml", "environment.yml",
        "batch-endpoint.yml", "batch-deployment.yml", "batch-cluster.yml",
    }  # fmt: skip
    for path in ours:
        assert validate_yaml_file(path, asset_spec) == [], path


def test_endpoint_uses_key_auth_and_no_traffic_before_a_deployment_exists():
    endpoint = load_online_endpoint(ROOT / ENDPOINT_FILE)
    assert endpoint.auth_mode == "key"
    assert not endpoint.traffic


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: p.name)
def test_deployment_serves_spec_yaml_model_version_on_the_default_sku(path, asset_spec):
    deployment = load_online_deployment(path)
    assert deployment.model == model_reference(asset_spec, "azureml")
    assert deployment.instance_type == asset_spec.allow_list("inference")[0]
    assert deployment.instance_count >= 1
    assert deployment.endpoint_name == load_online_endpoint(ROOT / ENDPOINT_FILE).name


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: p.name)
def test_request_settings_cover_max_new_tokens_and_match_the_server_concurrency(path, asset_spec):
    deployment = load_online_deployment(path)
    profile = serving_profile(asset_spec, deployment)
    assert deployment.request_settings.request_timeout_ms >= profile.required_timeout_ms
    assert deployment.request_settings.request_timeout_ms <= 180_000
    assert deployment.request_settings.max_concurrent_requests_per_instance == profile.concurrency


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: p.name)
def test_probes_wait_for_model_load_before_liveness_can_restart_the_container(path):
    deployment = load_online_deployment(path)
    readiness, liveness = deployment.readiness_probe, deployment.liveness_probe
    # Liveness must not start failing while readiness still allows the model to load.
    ready_window = readiness.initial_delay + readiness.period * readiness.failure_threshold
    assert liveness.initial_delay + liveness.period * liveness.failure_threshold >= ready_window
    assert readiness.initial_delay >= 30 and liveness.initial_delay >= 120


def test_custom_deployment_runs_our_scoring_in_the_inference_environment():
    deployment = load_online_deployment(CUSTOM)
    code = deployment.code_configuration
    assert (CUSTOM.parent / code.code).resolve() == ROOT / "scoring"
    assert (ROOT / "scoring" / code.scoring_script).is_file()
    environment = load_environment(ROOT / "environments" / "inference" / "environment.yml")
    assert deployment.environment.image == environment.image
    assert deployment.environment.conda_file == environment.conda_file


def test_custom_deployment_sets_every_serving_setting_with_one_threaded_worker():
    from distilgpt2_scoring.http_worker import GUNICORN_ARGS
    from distilgpt2_scoring.settings import ENV_PREFIX, ServingSettings

    variables = load_online_deployment(CUSTOM).environment_variables
    per_model_version = {"expected_content_sha256"}  # the digest of one version: deploy sets it, not the YAML
    assert {k for k in variables if k.startswith(ENV_PREFIX)} == {
        ENV_PREFIX + f.upper() for f in set(ServingSettings.model_fields) - per_model_version
    }
    assert variables["TEXTGEN_ENGINE"] == "auto"  # OpenVINO on CPU SKUs, CTranslate2 on GPU SKUs
    assert variables["TEXTGEN_REQUEST_TIMEOUT_MS"] == str(
        load_online_deployment(CUSTOM).request_settings.request_timeout_ms
    )
    assert variables["WORKER_COUNT"] == "1"
    assert variables["GUNICORN_CMD_ARGS"].split() == [
        "--threads",
        str(load_online_deployment(CUSTOM).request_settings.max_concurrent_requests_per_instance),
        *GUNICORN_ARGS.split(),  # what `distilgpt2-asset serve` runs too: slow clients time out
    ]


def test_no_code_variant_has_neither_code_nor_environment():
    deployment = load_online_deployment(NO_CODE)
    assert deployment.code_configuration is None
    assert deployment.environment is None


def test_sample_request_file_is_the_model_card_request(asset_spec):
    assert json.loads((DEPLOY / "sample-request.json").read_text()) == asset_spec.sample_request

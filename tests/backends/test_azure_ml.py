"""The Azure backend, down to what it sends: MLClient is replaced by a recorder at the network edge,
and each test checks the entities and arguments the real client would have received."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.ai.ml.entities import Model
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from distilgpt2_asset.azure_ml.registry import AzureRegistry
from distilgpt2_asset.azure_ml.workspace import Workspace
from distilgpt2_asset.backends import pick_sku
from distilgpt2_asset.backends.azure_ml import AzureBackend
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.skus import sku_catalog

REGISTRY = "my-registry"
WORKSPACE = Workspace("sub", "rg", "ws")


class Poller:
    def __init__(self, value=None):
        self.value = value

    def result(self):
        return self.value


class Recorder:
    """Operation groups of an MLClient; every call lands in `calls` as (group.method, args, kwargs)."""

    def __init__(self, downloads: dict[str, dict[str, str]] | None = None):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.endpoints: dict[str, object] = {}
        self.downloads = downloads or {}
        self.online_endpoints = self._group("online_endpoints")
        self.online_deployments = self._group("online_deployments")
        self.jobs = self._group("jobs")
        self.models = self._group("models")
        self.autoscale_settings = self._group("autoscale_settings")  # Azure Monitor's client

    def _group(self, group: str):
        recorder = self

        class Group:
            def __getattr__(self, method):
                def call(*args, **kwargs):
                    recorder.calls.append((f"{group}.{method}", args, kwargs))
                    return getattr(recorder, f"{group}_{method}", lambda *a, **k: None)(*args, **kwargs)

                return call

        return Group()

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        return [(args, kwargs) for called, args, kwargs in self.calls if called == name]

    # answers -------------------------------------------------------------------------------------
    def online_endpoints_get(self, name):
        if name not in self.endpoints:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return SimpleNamespace(
            name=name, location="westeurope", scoring_uri=f"https://{name}.westeurope.inference.ml.azure.com/score"
        )

    def online_endpoints_begin_create_or_update(self, endpoint):
        self.endpoints[endpoint.name] = endpoint
        return Poller(endpoint)

    def online_deployments_begin_create_or_update(self, deployment):
        return Poller(deployment)

    def online_endpoints_begin_delete(self, name):
        self.endpoints.pop(name, None)
        return Poller()

    def online_endpoints_invoke(self, endpoint_name, deployment_name, request_file):
        self.sent_request = json.loads(Path(request_file).read_text())
        return json.dumps(["I believe the meaning of life is to learn"])

    def jobs_create_or_update(self, job):
        return SimpleNamespace(name="brave_job_42", studio_url="https://ml.azure.com/runs/brave_job_42")

    def jobs_download(self, name, download_path, output_name):
        folder = Path(download_path) / "named-outputs" / output_name
        folder.mkdir(parents=True)
        for relative, text in self.downloads.get(output_name, {}).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(text)

    def models_get(self, name, version):
        return self.published

    def models_create_or_update(self, model):
        model.version = "1"
        return model


def azureml_tags(spec) -> dict[str, str]:
    """Tags as Microsoft's azureml registry shows them: lists as Python literals."""
    return {k: str(v) if isinstance(v, list) else ("" if v is None else str(v)) for k, v in spec.tags.items()}


def with_manifest(files: dict[str, str]) -> dict[str, str]:
    """An MLflow folder's files as a build writes them: plus the sha256 manifest of the others."""
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}
    return {**files, "sha256-manifest.json": json.dumps({"algorithm": "sha256", "files": digests})}


def recorders(spec) -> tuple[Recorder, Recorder]:
    """(workspace client, registry client): spec.yaml's version published, job outputs to download."""
    registry_client = Recorder()
    registry_client.published = Model(
        name=spec.name, version=spec.version, tags=azureml_tags(spec), properties=spec.string_properties()
    )
    metrics = {"rouge1": 0.31, "bleu_4": 0.05, "note": "x"}
    history = [{"step": 3, "epoch": 1.0, "loss": 0.9, "eval_loss": 0.8, "accuracy": 0.9, "f1_macro": 0.88}]
    finetuned = {
        "MLmodel": "flavors: {}\n",
        "metrics.json": json.dumps({"accuracy": 0.9, "f1_macro": 0.88, "best": {"step": 3}, "history": history}),
    }
    client = Recorder(
        downloads={
            "evaluation_result": {"evaluationResult/metrics.json": json.dumps(metrics)},
            "model": with_manifest(finetuned),
        }
    )
    return client, registry_client


@pytest.fixture
def azure(asset_spec, isolated_home):
    """(backend, workspace recorder, registry recorder), spec.yaml's version published in REGISTRY."""
    client, registry_client = recorders(asset_spec)
    registry = AzureRegistry(REGISTRY, client=registry_client)
    return AzureBackend(asset_spec, WORKSPACE, REGISTRY, client=client, registry=registry), client, registry_client


def test_the_model_is_looked_up_by_spec_name_and_version_in_the_registry(azure, asset_spec):
    backend, _, registry_client = azure
    model = backend.find_model()
    assert registry_client.named("models.get") == [((), {"name": asset_spec.name, "version": asset_spec.version})]
    assert model.uri == f"azureml://registries/{REGISTRY}/models/{asset_spec.name}/versions/{asset_spec.version}"
    assert model.allow_list("inference") == asset_spec.allow_list("inference")
    assert model.min_sku_spec("finetune") == asset_spec.min_sku_spec("finetune")


def test_a_model_missing_from_the_registry_is_reported_with_how_to_publish_it(azure):
    backend, _, registry_client = azure
    registry_client.models_get = lambda name, version: (_ for _ in ()).throw(ResourceNotFoundError("no such model"))
    with pytest.raises(AssetError, match=f"distilgpt2 15 is not in the Azure ML registry '{REGISTRY}'; publish it"):
        backend.find_model()


def test_deploy_creates_endpoint_deployment_and_traffic_with_the_picked_sku(azure, asset_spec):
    backend, client, _ = azure
    model = backend.find_model()
    endpoint = backend.deploy(model, pick_sku(model, "inference"))
    [((created_endpoint,), _), ((routed,), _)] = client.named("online_endpoints.begin_create_or_update")
    [((deployment,), _)] = client.named("online_deployments.begin_create_or_update")
    assert created_endpoint.name == deployment.endpoint_name == endpoint.name and created_endpoint.auth_mode == "key"
    assert deployment.instance_type == pick_sku(model, "inference") == endpoint.instance_type
    assert deployment.model == model.uri
    assert deployment.code_configuration.scoring_script == "score.py"
    assert routed.traffic == {deployment.name: 100}
    assert endpoint.scoring_uri.startswith(f"https://{endpoint.name}.")


def test_deploy_with_autoscale_creates_the_setting_on_the_deployment_and_close_deletes_it(azure):
    backend, client, _ = azure
    monitor = Recorder()
    backend._monitor = monitor
    model = backend.find_model()
    endpoint = backend.deploy(model, pick_sku(model, "inference"), autoscale="1:2")
    [((resource_group, name, setting), _)] = monitor.named("autoscale_settings.create_or_update")
    assert (resource_group, name, endpoint.autoscale) == (
        "rg",
        f"autoscale-{endpoint.name}-{endpoint.deployment}",
        "1:2",
    )
    assert setting.target_resource_uri.endswith(f"/onlineEndpoints/{endpoint.name}/deployments/{endpoint.deployment}")
    assert (setting.location, setting.profiles[0].capacity.maximum) == ("westeurope", "2")
    backend.close()
    assert monitor.named("autoscale_settings.delete") == [(("rg", name), {})]


def test_autoscale_the_checks_refuse_stops_before_any_call(azure):
    backend, client, _ = azure
    backend._monitor = monitor = Recorder()
    model = backend.find_model()
    with pytest.raises(AssetError, match=r"MAX 11 x Standard_E2s_v3 needs quota for 14 instances .* = 28 cores"):
        backend.deploy(model, pick_sku(model, "inference"), autoscale="1:11")
    assert client.calls == [] and monitor.calls == []


def test_a_sku_outside_the_allow_list_is_refused_before_any_call(azure):
    backend, client, _ = azure
    with pytest.raises(AssetError, match="inference_compute_allow_list"):
        backend.deploy(backend.find_model(), "Standard_NV6")
    assert client.calls == []


def test_invoke_sends_the_request_as_a_file_to_the_deployment(azure, asset_spec):
    backend, client, _ = azure
    model = backend.find_model()
    endpoint = backend.deploy(model, pick_sku(model, "inference"))
    answer = backend.invoke(endpoint, asset_spec.sample_request)
    assert client.sent_request == asset_spec.sample_request
    [(_, kwargs)] = client.named("online_endpoints.invoke")
    assert kwargs["endpoint_name"] == endpoint.name and kwargs["deployment_name"] == endpoint.deployment
    assert answer == ["I believe the meaning of life is to learn"]


def test_close_deletes_every_endpoint_the_session_made(azure):
    backend, client, _ = azure
    model = backend.find_model()
    endpoint = backend.deploy(model, pick_sku(model, "inference"))
    backend.close()
    assert client.named("online_endpoints.begin_delete") == [((), {"name": endpoint.name})]
    assert backend.endpoints == [] and client.endpoints == {}


def test_azure_errors_become_one_line(azure, asset_spec):
    backend, client, _ = azure
    model = backend.find_model()
    endpoint = backend.deploy(model, pick_sku(model, "inference"))

    def refuse(**kwargs):
        raise HttpResponseError("Quota exceeded for Standard_E2s_v3\nlong details")

    client.online_endpoints_invoke = refuse
    with pytest.raises(AssetError, match=r"^Azure ML workspace 'ws': Quota exceeded for Standard_E2s_v3$"):
        backend.invoke(endpoint, asset_spec.sample_request)


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            HttpResponseError,
            r"^Azure ML workspace 'ws' refused this identity \(HTTP 403\): signed in, but without "
            r"permission; it needs the AzureML Data Scientist role on the workspace$",
        ),
        (ResourceNotFoundError, r"^Azure ML workspace 'ws' not found, or not visible to this identity$"),
    ],
)
def test_a_refused_or_missing_workspace_is_told_apart_from_a_missing_sign_in(azure, error, expected):
    backend, client, _ = azure
    failure = error("The client does not have authorization")
    failure.status_code = 403 if error is HttpResponseError else 404

    def refuse(job):
        raise failure

    client.jobs_create_or_update = refuse
    with pytest.raises(AssetError, match=expected):
        backend.evaluate(backend.find_model())


def test_evaluation_submits_the_pipeline_sized_from_the_evaluation_allow_list(azure):
    backend, client, _ = azure
    model = backend.find_model()
    report = backend.evaluate(model, rows=50)
    [((job,), _)] = client.named("jobs.create_or_update")
    sku = pick_sku(model, "evaluation")
    assert job.jobs["prepare_data"].resources.instance_type == sku
    assert job.jobs["evaluate"].inputs["instance_type"]._data == sku
    assert job.jobs["evaluate"].inputs["mlflow_model"]._data["path"] == model.uri
    assert job.jobs["prepare_data"].inputs["rows"]._data == 50
    assert client.named("jobs.stream") == [(("brave_job_42",), {})]
    assert report.metrics == {"distilgpt2 15": {"rouge1": 0.31, "bleu_4": 0.05}}
    assert report.chart.is_file() and report.job == "brave_job_42"


def test_local_only_evaluation_options_are_refused_on_azure(azure):
    backend, client, _ = azure
    with pytest.raises(AssetError, match="apply to the local backend"):
        backend.evaluate(backend.find_model(), params={"max_new_tokens": 10})
    assert client.calls == []


def test_finetune_submits_the_job_on_a_gpu_sku_with_one_process_per_gpu(azure, tmp_path):
    backend, client, _ = azure
    model = backend.find_model()
    train, validation = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    run = backend.finetune(model, train=train, validation=validation, epochs=2)
    [((job,), _)] = client.named("jobs.create_or_update")
    sku = pick_sku(model, "finetune")
    assert job.resources.instance_type == sku
    assert job.distribution.process_count_per_instance == sku_catalog()[sku].gpus >= 1
    assert job.inputs["base_model"].path == model.uri
    assert job.inputs["train"].path == str(train) and job.inputs["validation"].path == str(validation)
    assert job.inputs["epochs"]._data == 2
    assert run.job == "brave_job_42" and run.metrics["f1_macro"] == 0.88


@pytest.mark.parametrize(
    "step, retired, nearest",
    [
        ("finetune", "Standard_NC6s_v3", "Standard_NC8as_T4_v3"),
        ("evaluate", "Standard_NC24s_v3", "Standard_NC64as_T4_v3"),
    ],
)
def test_a_retired_sku_asked_for_a_job_is_refused_before_any_call(azure, step, retired, nearest):
    backend, client, _ = azure
    model = backend.find_model()
    with pytest.raises(AssetError, match=f"{retired} was retired on 2025-09-30; the nearest live SKU .* is {nearest}$"):
        getattr(backend, step)(model, instance_type=retired)
    assert client.calls == []


def test_a_job_runs_on_the_sku_asked_for(azure):
    backend, client, _ = azure
    backend.finetune(backend.find_model(), instance_type="Standard_NC24ads_A100_v4")
    [((job,), _)] = client.named("jobs.create_or_update")
    assert job.resources.instance_type == "Standard_NC24ads_A100_v4"


def test_the_finetuned_model_is_registered_from_the_job_output_and_deployed(azure, asset_spec):
    backend, client, _ = azure
    model = backend.find_model()
    classifier = backend.register(backend.finetune(model))
    [((entity,), _)] = client.named("models.create_or_update")
    assert entity.name == f"{asset_spec.name}-text-classification" and entity.type == "mlflow_model"
    assert entity.path == "azureml://jobs/brave_job_42/outputs/model"
    assert entity.tags["task"] == "text-classification" and entity.tags["base_model_version"] == asset_spec.version
    assert entity.properties["SHA"] == asset_spec.revision  # the base's other properties are kept
    assert classifier.uri == f"azureml:{entity.name}:1"
    backend.deploy(classifier, pick_sku(model, "inference"))
    [((deployment,), _)] = client.named("online_deployments.begin_create_or_update")
    assert deployment.model == classifier.uri


def test_the_finetuned_model_records_its_own_hashes_and_the_bases_as_base_properties(azure, asset_spec):
    from distilgpt2_asset.publish import COMMIT_PROPERTY, CONTENT_PROPERTY, MANIFEST_PROPERTY
    from distilgpt2_scoring.model_files import manifest_digest

    backend, client, registry_client = azure
    published_by_us = {CONTENT_PROPERTY: "b" * 64, MANIFEST_PROPERTY: '{"model.safetensors":"' + "c" * 64 + '"}',
                       COMMIT_PROPERTY: "d" * 40}  # fmt: skip
    registry_client.published.properties.update(published_by_us)
    run = backend.finetune(backend.find_model())
    backend.register(run)
    [((entity,), _)] = client.named("models.create_or_update")
    files = json.loads((run.folder / "sha256-manifest.json").read_text())["files"]
    assert set(files) == {"MLmodel", "metrics.json"}
    assert entity.properties[CONTENT_PROPERTY] == manifest_digest(files) != published_by_us[CONTENT_PROPERTY]
    assert json.loads(entity.properties[MANIFEST_PROPERTY]) == files
    assert {k: entity.properties[f"base_{k}"] for k in published_by_us} == published_by_us
    assert COMMIT_PROPERTY not in entity.properties  # the base's publish commit is not the finetuned model's


def test_a_job_output_that_does_not_match_its_manifest_is_not_registered(azure):
    backend, client, _ = azure
    run = backend.finetune(backend.find_model())
    (run.folder / "metrics.json").write_text("{}")
    with pytest.raises(AssetError, match="the job's model output: .*metrics.json: sha256"):
        backend.register(run)
    assert client.named("models.create_or_update") == []

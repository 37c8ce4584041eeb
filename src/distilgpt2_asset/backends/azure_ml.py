"""The Azure backend: the same steps as LocalBackend, sent to Azure ML by the azure_ml package, which
it adapts and never goes around: the registry model through azure_ml.registry.AzureRegistry; endpoints
through deploy.py's checked plan and submit() and endpoints.py; jobs (the YAML files under jobs/,
sized with pick_sku) through jobs.py. Clients and credentials: azure_ml.workspace; nothing secret is
read or printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..azure_ml import endpoints, jobs
from ..azure_ml.workspace import Workspace, ml_client, monitor_client
from ..errors import AssetError
from ..paths import home
from ..skus import sku_catalog
from ..spec import AssetSpec
from .base import Backend, Endpoint, EvaluationReport, FinetuneRun, ModelInfo, pick_sku

EVALUATION_JOB = Path("jobs") / "evaluate-model-text-generation.yml"
FINETUNE_JOBS = {task: Path("jobs") / f"finetune-{task}.yml" for task in ("text-classification", "text-generation")}


class AzureBackend(Backend):
    def __init__(
        self,
        spec: AssetSpec,
        workspace: Workspace,
        registry_name: str,
        client: Any = None,
        registry: Any = None,
        monitor: Any = None,
    ):
        """client: an MLClient for the workspace, registry: an AzureRegistry, monitor: Azure Monitor's
        client for autoscale settings (each made on first use)."""
        from ..azure_ml.registry import AzureRegistry

        super().__init__(spec)
        self.workspace = workspace
        self.registry = registry or AzureRegistry(registry_name)
        self.registry_name = self.registry.name
        self._client = client
        self._monitor = monitor

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = ml_client(self.workspace)
        return self._client

    @property
    def monitor(self) -> Any:
        if self._monitor is None:
            self._monitor = monitor_client(self.workspace)
        return self._monitor

    # registry ------------------------------------------------------------------------------------

    def find_model(self) -> ModelInfo:
        name, version = self.spec.name, self.spec.version
        model = self.registry.get(name, version)
        if model is None:
            raise AssetError(
                f"{name} {version} is not in the Azure ML registry {self.registry_name!r}; "
                f"publish it with `distilgpt2-asset publish --registry {self.registry_name}`"
            )
        uri = self.registry.model_uri(name, version)
        return ModelInfo(str(model.name), str(model.version), uri, _strings(model.tags), _strings(model.properties))

    # endpoints -----------------------------------------------------------------------------------

    def deploy(
        self, model: ModelInfo, instance_type: str, name: str | None = None, autoscale: str | None = None
    ) -> Endpoint:
        from ..azure_ml.autoscale import submit_autoscale
        from ..azure_ml.deploy import pin_content_digest, submit

        plan = self.plan(model, instance_type, name)
        scaling = self.autoscale_plan(plan, autoscale)
        if model.name != self.spec.name:
            plan.deployment.model = model.uri  # a finetuned classifier, after the checks (see Backend.plan)
        pin_content_digest(
            plan, lambda registry, name, version: model.properties, log=lambda line: None
        )  # found in find_model
        endpoint = Endpoint(plan.endpoint.name, plan.deployment.name, model, instance_type, "", autoscale=autoscale)
        self.endpoints.append(endpoint)  # before submit: close() also removes a half-made endpoint
        submit(plan, self.client, where=self.where)
        endpoint.scoring_uri, location = endpoints.scoring_uri(self.client, plan.endpoint.name, self.where)
        if scaling is not None:
            submit_autoscale(scaling, self.monitor, self.workspace, location)
        return endpoint

    def invoke(self, endpoint: Endpoint, request: dict) -> Any:
        return endpoints.invoke(self.client, endpoint.name, endpoint.deployment, request, self.where)

    def _remove(self, endpoint: Endpoint) -> None:
        from ..azure_ml.autoscale import delete_autoscale

        print(f"deleting endpoint {endpoint.name} (its deployments go with it)", flush=True)
        endpoints.delete(self.client, endpoint.name, self.where)
        if endpoint.autoscale:
            delete_autoscale(self.monitor, self.workspace, endpoint.name, endpoint.deployment)

    # jobs ----------------------------------------------------------------------------------------

    def evaluate(
        self,
        model: ModelInfo,
        data: Path | None = None,
        rows: int | None = None,
        params: dict | None = None,
        instance_type: str | None = None,
    ) -> EvaluationReport:
        from ..evaluation.report import CHART_FILE, plot_metrics

        if data is not None or params:
            raise AssetError(
                "data and params apply to the local backend; on Azure the pipeline prepares cnn_dailymail "
                f"and the metrics come from {EVALUATION_JOB.parent}/evaluation/eval-config.json"
            )
        sku = pick_sku(model, "evaluation", instance_type)
        overrides: list[dict[str, Any]] = [
            {"jobs.prepare_data.resources.instance_type": sku},
            {"jobs.evaluate.inputs.instance_type": sku},
            {"jobs.evaluate.inputs.mlflow_model.path": model.uri},
        ]
        if rows:
            overrides.append({"jobs.prepare_data.inputs.rows": rows})
        job = self._run_job(EVALUATION_JOB, overrides)
        folder = self._download(job, "evaluation_result")
        label = f"{model.name} {model.version}"
        metrics = read_metrics(folder)
        # The job computes the metrics of its eval-config.json; the chart shows those.
        plot_metrics(folder / CHART_FILE, {label: {"metrics": metrics}}, f"{model.task} ({job})")
        return EvaluationReport({label: metrics}, folder, folder / CHART_FILE, job)

    def finetune(
        self,
        model: ModelInfo,
        train: Path | None = None,
        validation: Path | None = None,
        epochs: int | None = None,
        instance_type: str | None = None,
        task: str = "text-classification",
        max_length: int | None = None,
    ) -> FinetuneRun:
        from ..finetune import CURVE_FILE, METRICS_FILE

        if (train is None) != (validation is None):
            raise AssetError("on Azure pass both train and validation files (or neither: the job's sample data)")
        sku = pick_sku(model, "finetune", instance_type)
        overrides: list[dict[str, Any]] = [
            {"resources.instance_type": sku},
            {"distribution.process_count_per_instance": sku_catalog()[sku].gpus},  # one process per GPU
            {"inputs.base_model.path": model.uri},
        ]
        if train is not None and validation is not None:
            overrides += [
                {"inputs.train.path": str(Path(train).resolve())},
                {"inputs.validation.path": str(Path(validation).resolve())},
            ]
        if epochs:
            overrides.append({"inputs.epochs": epochs})
        if max_length:
            overrides.append({"inputs.max_length": max_length})
        job = self._run_job(FINETUNE_JOBS[task], overrides)
        folder = self._download(job, "model")
        metrics_file, curve = folder / METRICS_FILE, folder / CURVE_FILE
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        return FinetuneRun(metrics, folder, curve if curve.is_file() else None, job, base=model)

    def register(self, run: FinetuneRun) -> ModelInfo:
        """The job's `model` output as a workspace model: the base model's tags with the new task, its
        properties, and the hashes of the finetuned files themselves (the downloaded output, verified);
        the base model's hashes are kept as base_* properties."""
        from ..finetune import REGISTERED_SUFFIXES
        from ..finetune.release import TASK

        base, task = run.base, run.metrics.get("task", TASK)
        if base is None:
            raise AssetError("the finetune run names no base model to register it under")
        entity = {
            "name": f"{base.name}{REGISTERED_SUFFIXES[task]}",
            "description": f"{base.name} {base.version} finetuned for {task} by job {run.job}",
            "tags": {**base.tags, "task": task, "base_model": base.name, "base_model_version": base.version},
            "properties": finetuned_properties(base.properties, run.folder),
        }
        model = jobs.register_output(self.client, str(run.job), "model", entity, self.where)
        uri = f"azureml:{model.name}:{model.version}"
        print(f"registered {uri}")
        return ModelInfo(model.name, str(model.version), uri, _strings(model.tags), _strings(model.properties))

    def _run_job(self, relative_path: Path, overrides: list[dict[str, Any]]) -> str:
        return jobs.run_job(self.client, self.spec.path.parent / relative_path, overrides, self.where)

    def _download(self, job: str, output: str) -> Path:
        return jobs.download_output(self.client, job, output, home() / "azure-jobs" / job, self.where)

    @property
    def where(self) -> str:
        """The workspace, as Azure failures name it."""
        return f"Azure ML workspace {self.workspace.workspace_name!r}"


def finetuned_properties(base_properties: dict[str, str], output: Path | None) -> dict[str, str]:
    """The base model's properties, with the recorded hashes describing the finetuned files: the
    verified manifest of the job's downloaded output and its digest; the base's as base_*."""
    from distilgpt2_scoring.model_files import ModelFilesError, manifest_digest, open_model

    from ..publish import COMMIT_PROPERTY, CONTENT_PROPERTY, MANIFEST_PROPERTY

    if output is None:
        raise AssetError("the finetune run has no downloaded model output to register")
    try:
        files = open_model(output, require_manifest=True).files
    except ModelFilesError as exc:  # context: the model the job wrote, not one of the user's folders
        raise AssetError(f"the job's model output: {exc}") from None
    recorded = (CONTENT_PROPERTY, MANIFEST_PROPERTY, COMMIT_PROPERTY)
    properties = {k: v for k, v in base_properties.items() if k not in recorded}
    properties.update({f"base_{k}": base_properties[k] for k in recorded if k in base_properties})
    properties[CONTENT_PROPERTY] = manifest_digest(files)
    properties[MANIFEST_PROPERTY] = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return properties


def read_metrics(folder: Path) -> dict[str, float]:
    """The numbers of the first metrics.json under an evaluation output: flat, or under "metrics"."""
    found = sorted(Path(folder).rglob("metrics.json"))
    if not found:
        raise AssetError(f"{folder}: the evaluation output holds no metrics.json")
    data = json.loads(found[0].read_text())
    data = data.get("metrics", data) if isinstance(data, dict) else {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _strings(values: Any) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in dict(values or {}).items()}

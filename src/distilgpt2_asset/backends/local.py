"""The local backend: the local MLflow registry, the real azmlinfsrv on 127.0.0.1, jobs in this process.

Each step is what the Azure backend asks Azure ML to do, run here: the registry version (only ever
the pinned build) is built from the hub when missing, while another model_source (a testing model)
is built once and used unregistered; a "deployment" is azmlinfsrv with the deployment YAML's
TEXTGEN_* settings; evaluation and finetuning are evaluate.py and finetune.py. Servers are stopped by
delete()/close(), and at interpreter exit at the latest.
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

from ..errors import AssetError
from ..paths import default_build_dir, home
from ..registry import ASSET_VERSION_TAG, PROPERTY_PREFIX, LocalRegistry
from ..spec import AssetSpec
from .base import (
    SAMPLE_EVALUATION_DATA,
    SAMPLE_FINETUNE_DATA,
    Backend,
    Endpoint,
    EvaluationReport,
    FinetuneRun,
    ModelInfo,
    pick_sku,
)

SERVER_SETTINGS_PREFIX = "TEXTGEN_"
# Deployment settings that name places on the Azure container, not on this machine.
CONTAINER_ONLY = ("TEXTGEN_CACHE_DIR",)
LOG_TAIL_LINES = 20


class LocalBackend(Backend):
    def __init__(self, spec: AssetSpec, model_source: str | None = None, registry_uri: str | None = None):
        super().__init__(spec)
        self.model_source = str(model_source or spec.hf_model_id)
        self.registry = LocalRegistry(registry_uri)
        atexit.register(self._stop_servers)  # a notebook that fails half-way leaves no server behind

    # registry ------------------------------------------------------------------------------------

    def find_model(self) -> ModelInfo:
        """spec.yaml's version in the local registry, checked to be the pinned build (built from the hub
        and registered when missing); another model_source is built once and used unregistered."""
        from ..provenance import is_pinned_source
        from ..serve import registered_asset, source_build

        if is_pinned_source(self.spec, self.model_source):
            return self._info(registered_asset(self.spec, self.registry))
        folder = source_build(self.spec, self.model_source)
        print(
            f"model_source {self.model_source} is not spec.yaml's {self.spec.hf_model_id}: its build {folder} is used "
            f"unregistered (the registry's {self.spec.name} {self.spec.version} is only ever the pinned build)"
        )
        tags, properties = self.spec.string_tags(), self.spec.string_properties()
        return ModelInfo(self.spec.name, folder.name, folder.as_uri(), tags, properties, folder)

    def _info(self, version) -> ModelInfo:
        tags = {k: v for k, v in version.tags.items() if not k.startswith(PROPERTY_PREFIX)}
        properties = {k[len(PROPERTY_PREFIX) :]: v for k, v in version.tags.items() if k.startswith(PROPERTY_PREFIX)}
        asset_version = tags.get(ASSET_VERSION_TAG, str(version.version))
        uri = f"models:/{version.name}/{version.version}"
        return ModelInfo(version.name, asset_version, uri, tags, properties, Path(version.source))

    # endpoints -----------------------------------------------------------------------------------

    def deploy(
        self, model: ModelInfo, instance_type: str, name: str | None = None, autoscale: str | None = None
    ) -> Endpoint:
        from ..serve import free_port, start_server

        plan = self.plan(model, instance_type, name)
        scaling = self.autoscale_plan(plan, autoscale)  # refused here as on Azure, before a server starts
        variables = plan.deployment.environment_variables or {}
        settings = {
            k: str(v) for k, v in variables.items() if k.startswith(SERVER_SETTINGS_PREFIX) and k not in CONTAINER_ONLY
        }
        log_path = home() / "logs" / f"{plan.endpoint.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        print(f"starting azmlinfsrv for {model.name} {model.version} ({instance_type} on Azure); log: {log_path}")
        threads = plan.profile.concurrency
        try:
            with open(log_path, "ab") as log:
                server = start_server(_files(model), port=free_port(), threads=threads, env=settings, log=log)
        except AssetError as exc:
            raise AssetError(f"{exc}\n--- {log_path} (last lines) ---\n{_tail(log_path)}") from None
        endpoint = Endpoint(
            plan.endpoint.name, plan.deployment.name, model, instance_type, server.score_url, server, autoscale
        )
        self.endpoints.append(endpoint)
        if scaling is not None:
            print(
                f"autoscale {scaling.minimum} to {scaling.maximum} instances checked "
                f"({len(scaling.rules)} rules of jobs/deploy/autoscale.yml; {scaling.floors}); "
                "a local server is one instance: Azure Monitor applies the setting on the azure backend"
            )
        return endpoint

    def invoke(self, endpoint: Endpoint, request: dict) -> Any:
        import requests

        response = requests.post(endpoint.scoring_uri, json=request, timeout=300)
        if response.status_code != 200:
            raise AssetError(f"HTTP {response.status_code} from {endpoint.scoring_uri}: {response.text.strip()}")
        return response.json()

    def _remove(self, endpoint: Endpoint) -> None:
        endpoint.handle.stop()

    def _stop_servers(self) -> None:
        for endpoint in self.endpoints:
            endpoint.handle.stop()

    # jobs ----------------------------------------------------------------------------------------

    def evaluate(
        self,
        model: ModelInfo,
        data: Path | None = None,
        rows: int | None = None,
        params: dict | None = None,
        instance_type: str | None = None,
    ) -> EvaluationReport:
        from ..evaluation.report import CHART_FILE
        from ..evaluation.run import EvaluationOptions, run_evaluation

        if instance_type:
            pick_sku(model, "evaluation", instance_type)  # refused here as on Azure; the job runs in this process

        output = home() / "evaluations" / f"{model.name}-{model.version}"
        options = EvaluationOptions(params=dict(params or {}), limit=rows)
        payload = run_evaluation(_files(model), Path(data or SAMPLE_EVALUATION_DATA), output, options)
        metrics = {f"{model.name} {model.version}": payload["model"]["metrics"]}
        return EvaluationReport(metrics, output, output / CHART_FILE)

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
        from ..finetune import CURVE_FILE, REGISTERED_SUFFIXES, FinetuneInputs, FinetuneSettings, finetune

        if instance_type:
            pick_sku(model, "finetune", instance_type)  # refused here as on Azure; the job runs in this process

        if train is None:
            train, validation = (SAMPLE_FINETUNE_DATA[task] / name for name in ("train.jsonl", "validation.jsonl"))
        inputs = FinetuneInputs(
            train=Path(train),
            validation=Path(validation) if validation else None,
            output=default_build_dir() / f"{self.spec.name}{REGISTERED_SUFFIXES[task]}",
            source=str(model.path),
            task=task,
        )
        defaults = FinetuneSettings()  # for what was not given
        settings = FinetuneSettings(epochs=epochs or defaults.epochs, max_length=max_length or defaults.max_length)
        result = finetune(self.spec, inputs, settings)
        if result.output is None:  # only on ranks other than 0, which this process is not
            raise AssetError("the finetune wrote no model")
        curve = result.output / CURVE_FILE
        return FinetuneRun(result.metrics, result.output, curve if curve.is_file() else None, base=model)

    def register(self, run: FinetuneRun) -> ModelInfo:
        from ..finetune import register_finetuned

        if run.folder is None:
            raise AssetError("the finetune run has no model folder to register")
        registration = register_finetuned(self.spec, run.folder, self.registry.uri)
        print(f"{registration.outcome}: {registration.name} {registration.asset_version} as {registration.model_uri}")
        return self._info(self.registry.find(registration.name, registration.asset_version))


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _files(model: ModelInfo) -> Path:
    """The registered model's files on this machine (every version of the local registry has them)."""
    if model.path is None:
        raise AssetError(f"{model.name} {model.version}: its files are not on this machine")
    return model.path

"""What both backends share: the model as a registry shows it, SKU choice, the checked deployment plan.

A notebook sees a registry model only through ModelInfo: its tags and properties as the registry
stores them (strings; lists as JSON, or as Python literals in Azure's own registry), read back
into allow-lists and minimum SKUs. The deployment plan of either backend is deploy.py's, from
jobs/deploy/*.yml, so a SKU or timeout that Azure would refuse is refused locally too.
"""

from __future__ import annotations

import ast
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AssetError
from ..paths import PACKAGE_DATA
from ..sku_fitness import SkuFit, SkuRules, assess, assess_allow_list
from ..spec import AssetSpec, SkuSpec

SAMPLE_EVALUATION_DATA = PACKAGE_DATA / "evaluation" / "sample.jsonl"
SAMPLE_CLASSIFICATION_DATA = PACKAGE_DATA / "classification"  # train.jsonl, validation.jsonl
SAMPLE_FINETUNE_DATA = {
    "text-classification": SAMPLE_CLASSIFICATION_DATA,
    "text-generation": PACKAGE_DATA / "text-generation",
}


@dataclass(frozen=True)
class ModelInfo:
    """One registered model version, as its registry describes it."""

    name: str
    version: str
    uri: str  # where it lives: models:/NAME/N locally, azureml://... on Azure
    tags: dict[str, str] = field(repr=False)
    properties: dict[str, str] = field(repr=False)
    path: Path | None = field(default=None, repr=False)  # its files, when they are on this machine

    @property
    def task(self) -> str:
        return self.tags.get("task", "")

    def allow_list(self, scenario: str) -> list[str]:
        return parse_list_tag(self.tags.get(f"{scenario}_compute_allow_list", ""))

    def min_sku_spec(self, scenario: str) -> SkuSpec | None:
        value = self.properties.get(f"{scenario}-min-sku-spec")
        return SkuSpec.parse(value) if value else None


def parse_list_tag(value: str) -> list[str]:
    """A list tag: JSON (our registries), a Python literal (azureml's), or `[a, b]` / `a, b` unquoted."""
    text = str(value or "").strip()
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, list):
            return [str(item).strip() for item in parsed]
    return [item.strip() for item in text.strip("[]").split(",") if item.strip()]


def sku_rules(model: ModelInfo, scenario: str) -> SkuRules:
    """The registered model's allow-list and min-sku-spec for a scenario, for the one SKU assessment."""
    return SkuRules(scenario, model.allow_list(scenario), model.min_sku_spec(scenario), owner=model.name)


def sku_fits(model: ModelInfo, scenario: str) -> list[SkuFit]:
    """Every SKU of the model's allow-list for a scenario, fitting first, smallest first (sku_fitness)."""
    return assess_allow_list(sku_rules(model, scenario), online_endpoint=scenario == "inference")


def pick_sku(model: ModelInfo, scenario: str, preferred: str | None = None) -> str:
    """preferred if it fits, else the smallest SKU of the allow-list that fits (never a retired one,
    nor a GPU the scenario's software cannot run); a retirement announced for later is printed."""
    rules = sku_rules(model, scenario)
    if preferred:
        chosen = assess(preferred, rules, online_endpoint=scenario == "inference")
        if not chosen.fits:
            raise AssetError(f"instance type {preferred} cannot run {scenario}: {_refusal(model, scenario, chosen)}")
        picked = str(chosen.name)
    else:
        fitting = next((fit for fit in sku_fits(model, scenario) if fit.fits), None)
        if fitting is None:
            raise AssetError(
                f"{model.name} {model.version}: no SKU of its {scenario}_compute_allow_list meets its "
                f"{scenario}-min-sku-spec and is still live"
            )
        chosen, picked = fitting, fitting.sku
    if chosen.notice:
        print(f"note: {chosen.notice}", flush=True)
    return picked


def _refusal(model: ModelInfo, scenario: str, refused: SkuFit) -> str:
    if refused.rule == "sku-lifecycle":  # retired, or a GPU the software cannot run: names the nearest live SKU
        return refused.message
    fitting = [str(fit.name) for fit in sku_fits(model, scenario) if fit.fits]
    return f"{refused.message}; fitting: {_shown(fitting)}"


def _shown(skus: list[str]) -> str:
    return ", ".join(skus[:8]) + (", ..." if len(skus) > 8 else "")


def endpoint_name(model: ModelInfo) -> str:
    """Unique per Azure region, as endpoint names must be: MODEL-NAME-<seconds since epoch>, <= 32 characters."""
    return f"{model.name[:21].rstrip('-')}-{int(time.time())}"


@dataclass
class Endpoint:
    name: str
    deployment: str
    model: ModelInfo = field(repr=False)
    instance_type: str
    scoring_uri: str
    handle: Any = field(default=None, repr=False)  # the local server, when it runs here
    autoscale: str | None = None  # MIN:MAX of its Azure Monitor autoscale setting, when it has one


@dataclass
class EvaluationReport:
    metrics: dict[str, dict[str, float]]  # model label -> metric -> value
    folder: Path  # metrics.json, predictions (locally), metrics.png
    chart: Path | None
    job: str | None = None  # the Azure ML job's name


@dataclass
class FinetuneRun:
    metrics: dict[str, Any]  # metrics.json of the finetuned model (accuracy, f1_macro, history, ...)
    folder: Path | None  # the MLflow model here (locally, or as downloaded from the job)
    curve: Path | None  # training-curve.png
    job: str | None = None  # the Azure ML job's name; its `model` output is the model
    base: ModelInfo | None = None  # the model it was finetuned from


class Backend(ABC):
    """The notebooks' API; LocalBackend runs everything here, AzureBackend sends it to Azure ML."""

    registry_name: str | None = None  # None: the registry jobs/deploy/online-deployment.yml names

    def __init__(self, spec: AssetSpec):
        self.spec = spec
        self.endpoints: list[Endpoint] = []  # made by this session and not yet deleted

    def plan(self, model: ModelInfo, instance_type: str, name: str | None = None):
        """jobs/deploy/*.yml with this instance type, checked by deploy.py as an Azure deploy is.

        deploy.py checks the deployment for spec.yaml's model; a finetuned classifier has the same
        architecture and serving limits, so the backends swap in its reference after the checks.
        """
        from ..azure_ml.deploy import plan_deployment

        overrides = [{"instance_type": instance_type}]
        return plan_deployment(
            self.spec, overrides, endpoint_name=name or endpoint_name(model), model_registry=self.registry_name
        )

    def autoscale_plan(self, plan, autoscale: str | None):
        """The autoscale setting for a planned deployment, checked as `deploy --autoscale MIN:MAX` checks
        it (jobs/deploy/autoscale.yml, measurements, the quota hint); None without autoscale."""
        if autoscale is None:
            return None
        from ..azure_ml.autoscale import plan_autoscale

        return plan_autoscale(self.spec, plan, autoscale)

    @abstractmethod
    def find_model(self) -> ModelInfo:
        """spec.yaml's name and version in the backend's registry."""

    @abstractmethod
    def deploy(
        self, model: ModelInfo, instance_type: str, name: str | None = None, autoscale: str | None = None
    ) -> Endpoint:
        """An endpoint with one deployment of the model taking all traffic (name: generated if None);
        autoscale "MIN:MAX": with an Azure Monitor autoscale setting (checked on both backends)."""

    @abstractmethod
    def invoke(self, endpoint: Endpoint, request: dict) -> Any:
        """The endpoint's JSON answer to a scoring request; an AssetError for anything but success."""

    @abstractmethod
    def _remove(self, endpoint: Endpoint) -> None: ...

    @abstractmethod
    def evaluate(
        self,
        model: ModelInfo,
        data: Path | None = None,
        rows: int | None = None,
        params: dict | None = None,
        instance_type: str | None = None,
    ) -> EvaluationReport:
        """Text-generation metrics of the model (data and params: local only; rows: the first N;
        instance_type: the job's SKU, checked by pick_sku on both backends; None: pick_sku's)."""

    @abstractmethod
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
        """The model finetuned for task, text-classification or text-generation (train None: the shipped
        sample data; instance_type: the job's SKU, checked by pick_sku on both backends; None: pick_sku's;
        max_length: tokens per sequence, None: the finetune default, or the job's)."""

    @abstractmethod
    def register(self, run: FinetuneRun) -> ModelInfo:
        """The finetuned model as a model version of its own."""

    def delete(self, endpoint: Endpoint) -> None:
        if endpoint in self.endpoints:
            self.endpoints.remove(endpoint)
        self._remove(endpoint)

    def close(self) -> None:
        """Delete every endpoint this session made (the notebooks' last cell)."""
        errors = []
        for endpoint in list(self.endpoints):
            try:
                self.delete(endpoint)
            except Exception as exc:  # keep deleting the others
                errors.append(f"{endpoint.name}: {exc}")
        if errors:
            raise AssetError("could not delete: " + "; ".join(errors))

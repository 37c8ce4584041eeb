"""spec.yaml, typed: the single source of truth for the asset's name, version, tags and properties.

Everything else (MLflow metadata, registry tags, publish payloads, validation, deployment
defaults, notebooks) reads these accessors instead of repeating a value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from .errors import AssetError
from .paths import asset_root

SCENARIOS = ("inference", "evaluation", "finetune")


@dataclass(frozen=True, order=True)
class SkuSpec:
    """A min-sku-spec: `vCPUs|GPUs|memoryGB|tempDiskGB`."""

    vcpus: int
    gpus: int
    memory_gb: int
    temp_disk_gb: int

    @classmethod
    def parse(cls, text: str) -> SkuSpec:
        parts = str(text).strip().split("|")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"{text!r} is not vCPUs|GPUs|memoryGB|tempDiskGB (four whole numbers)")
        return cls(*(int(p) for p in parts))

    def __str__(self) -> str:
        return f"{self.vcpus}|{self.gpus}|{self.memory_gb}|{self.temp_disk_gb}"


# The model card's tags and properties, in the card's order, and where spec.yaml keeps each in
# Microsoft's migrated schema (the mapping of azureml-registry-tools' spec_metadata_mappings, which
# tests/test_spec.py checks). The form says how the card shows the value: `text` as it is, `list`
# a list, `csv` a list joined with ", ", `flag` a tag present with no value when true, `bool`
# "True"/"False", `literal` a mapping written as a Python literal.
CARD_TAGS = (
    ("datasets", "system_metadata.datasets", "csv"),
    ("license", "system_metadata.license", "text"),
    ("model_specific_defaults", "tags.model_specific_defaults", "literal"),
    ("SharedComputeCapacityEnabled", "system_metadata.sharedComputeCapacityEnabled", "flag"),
    ("task", "system_metadata.tasks.inferenceTasks", "csv"),
    ("hiddenlayerscanned", "system_metadata.hiddenLayerScanned", "flag"),
    ("huggingface_model_id", "system_metadata.huggingFaceModelId", "text"),
    *((f"{s}_compute_allow_list", f"system_metadata.supportedComputes.{s}Computes", "list") for s in SCENARIOS),
)
CARD_PROPERTIES = (
    ("SharedComputeCapacityEnabled", "system_metadata.sharedComputeCapacityEnabled", "bool"),
    ("SHA", "properties.SHA", "text"),
    ("evaluation-min-sku-spec", "system_metadata.SKU.evaluationMinSkuSpec", "text"),
    ("evaluation-recommended-sku", "system_metadata.SKU.evaluationRecommendedSkus", "csv"),
    ("finetune-min-sku-spec", "system_metadata.SKU.finetuneMinSkuSpec", "text"),
    ("finetune-recommended-sku", "system_metadata.SKU.finetuneRecommendedSkus", "csv"),
    ("finetuning-tasks", "system_metadata.tasks.fineTuningTasks", "csv"),
    ("inference-min-sku-spec", "system_metadata.SKU.inferenceMinSkuSpec", "text"),
    ("inference-recommended-sku", "system_metadata.SKU.inferenceRecommendedSkus", "csv"),
    ("languages", "system_metadata.languages", "csv"),
)


class AssetSpec:
    """Read-only view of spec.yaml (plus the model card it publishes with).

    spec.yaml is in Microsoft's migrated schema (`system_metadata`); `tags` and `properties` here
    are the card's, derived from it: what registries store and what every reader asks for.
    """

    def __init__(self, data: dict[str, Any], path: Path):
        self.data = data
        self.path = path

    # identity ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    @property
    def version(self) -> str:
        return str(self.data.get("version", ""))

    @property
    def system_metadata(self) -> dict[str, Any]:
        return dict(self.data.get("system_metadata") or {})

    @property
    def tags(self) -> dict[str, Any]:
        """The card's tags in its order (absent fields left out), then spec.yaml's other tags."""
        return self._card_view(CARD_TAGS, "tags")

    @property
    def properties(self) -> dict[str, Any]:
        """The card's properties in its order (absent fields left out), then spec.yaml's other properties."""
        return self._card_view(CARD_PROPERTIES, "properties")

    @property
    def task(self) -> str:
        return ", ".join(self._list("system_metadata.tasks.inferenceTasks"))

    @property
    def hf_model_id(self) -> str:
        return str(self.field("system_metadata.huggingFaceModelId") or "")

    @property
    def revision(self) -> str:
        """The Hugging Face commit SHA the asset is pinned to."""
        return str(self.field("properties.SHA") or "")

    @property
    def model_specific_defaults(self) -> dict[str, bool]:
        """e.g. {'apply_lora': True, ...}; the card stores a mapping of 'true' strings."""
        raw = self.field("tags.model_specific_defaults")
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise AssetError(f"{self.path}: tags.model_specific_defaults must be a mapping, not {raw!r}")
        return {k: str(v).lower() == "true" for k, v in raw.items()}

    @property
    def finetuning_tasks(self) -> list[str]:
        return self._list("system_metadata.tasks.fineTuningTasks")

    # compute -------------------------------------------------------------------------------
    def allow_list(self, scenario: str) -> list[str]:
        return self._list(f"system_metadata.supportedComputes.{scenario}Computes")

    def recommended_skus(self, scenario: str) -> list[str]:
        return self._list(f"system_metadata.SKU.{scenario}RecommendedSkus")

    def min_sku_spec(self, scenario: str) -> SkuSpec:
        return SkuSpec.parse(self.field(f"system_metadata.SKU.{scenario}MinSkuSpec") or "")

    # fields --------------------------------------------------------------------------------
    def field(self, dotted: str) -> Any:
        """The value at a dotted path of spec.yaml (e.g. system_metadata.SKU.inferenceMinSkuSpec); None if absent."""
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    def _list(self, dotted: str) -> list[str]:
        return _split_list(self.field(dotted) or [])

    def _card_view(self, table: tuple[tuple[str, str, str], ...], section: str) -> dict[str, Any]:
        view = {}
        for card_name, dotted, form in table:
            value = self.field(dotted)
            if value is None or (form == "flag" and value is not True):
                continue
            view[card_name] = _card_form(value, form)
        for name, value in (self.data.get(section) or {}).items():
            view.setdefault(name, value)
        return view

    # model card ----------------------------------------------------------------------------
    @property
    def description_path(self) -> Path:
        return self.path.parent / "model" / "description.md"

    @cached_property
    def description(self) -> str:
        return self.description_path.read_text(encoding="utf-8")

    @cached_property
    def sample_request(self) -> dict[str, Any]:
        """The card's sample request, parsed from its '### Sample input' JSON block."""
        return json.loads(_json_block_after(self.description, "### Sample input"))

    # flattened views for registries ----------------------------------------------------------
    def string_tags(self) -> dict[str, str]:
        """Tags as strings (MLflow and Azure registries store strings); lists become JSON arrays."""
        return {k: _as_string(v) for k, v in self.tags.items()}

    def string_properties(self) -> dict[str, str]:
        return {k: _as_string(v) for k, v in self.properties.items()}


def _card_form(value: Any, form: str) -> Any:
    if form == "list":
        return _split_list(value)
    if form == "csv":
        return ", ".join(_split_list(value))
    if form == "flag":
        return ""
    if form == "bool":
        return str(value is True or str(value).lower() == "true")
    if form == "literal":
        return str(dict(value)) if isinstance(value, dict) else str(value)
    return str(value)


def _split_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _as_string(value: Any) -> str:
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _json_block_after(markdown: str, heading: str) -> str:
    match = re.search(re.escape(heading) + r"\s*```json\s*(.*?)```", markdown, re.S)
    if not match:
        raise AssetError(f"model card has no ```json block under {heading!r}")
    return match.group(1)


def read_yaml(path: Path, missing_hint: str = "") -> Any:
    """A YAML file's content; AssetError naming the file when it cannot be read or parsed."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssetError(f"{path}: no such file{missing_hint}") from None
    except OSError as exc:
        raise AssetError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise AssetError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def load_spec(path: Path | str | None = None) -> AssetSpec:
    """Load spec.yaml (default: the asset checkout's). Raises AssetError with the file named."""
    path = Path(path) if path else asset_root() / "spec.yaml"
    data = read_yaml(path, " (set DISTILGPT2_ASSET_ROOT to the asset checkout)")
    if not isinstance(data, dict):
        raise AssetError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return AssetSpec(data, path.resolve())

"""spec.yaml, typed: the single source of truth for the asset's name, version, tags and properties.

Everything else (MLflow metadata, registry tags, publish payloads, validation, deployment
defaults, notebooks) reads these accessors instead of repeating a value.
"""

from __future__ import annotations

import ast
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


class AssetSpec:
    """Read-only view of spec.yaml (plus the model card it publishes with)."""

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
    def tags(self) -> dict[str, Any]:
        return dict(self.data.get("tags") or {})

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.data.get("properties") or {})

    @property
    def task(self) -> str:
        return str(self.tags.get("task", ""))

    @property
    def hf_model_id(self) -> str:
        return str(self.tags.get("huggingface_model_id", ""))

    @property
    def revision(self) -> str:
        """The Hugging Face commit SHA the asset is pinned to."""
        return str(self.properties.get("SHA", ""))

    @property
    def model_specific_defaults(self) -> dict[str, bool]:
        """e.g. {'apply_lora': True, ...}; the card stores a Python-literal dict of 'true' strings."""
        raw = self.tags.get("model_specific_defaults", "{}")
        try:
            parsed = ast.literal_eval(raw) if isinstance(raw, str) else dict(raw)
        except (ValueError, SyntaxError) as exc:
            raise AssetError(f"{self.path}: tag model_specific_defaults is not a dict literal: {raw!r}") from exc
        return {k: str(v).lower() == "true" for k, v in parsed.items()}

    @property
    def finetuning_tasks(self) -> list[str]:
        return _split_list(self.properties.get("finetuning-tasks", ""))

    # compute -------------------------------------------------------------------------------
    def allow_list(self, scenario: str) -> list[str]:
        return [str(s) for s in (self.tags.get(f"{scenario}_compute_allow_list") or [])]

    def recommended_skus(self, scenario: str) -> list[str]:
        return _split_list(self.properties.get(f"{scenario}-recommended-sku", ""))

    def min_sku_spec(self, scenario: str) -> SkuSpec:
        return SkuSpec.parse(self.properties.get(f"{scenario}-min-sku-spec", ""))

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

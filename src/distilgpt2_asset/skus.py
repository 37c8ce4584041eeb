"""The offline SKU catalog (model/sku_catalog.csv) and the lists of SKUs that endpoints support.

Each catalog row carries, with its sources: the size (vCPUs|GPUs|memory|temp disk), the GPU model
and its CUDA compute capability, and the retirement date Microsoft announced for the series, if any.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from .paths import asset_root
from .spec import SkuSpec


@dataclass(frozen=True)
class SkuFacts:
    """One catalog row."""

    name: str
    spec: SkuSpec
    gpu_model: str  # "" for a CPU SKU
    compute_capability: str  # e.g. "7.0"; "" for a CPU SKU
    retirement: date | None  # the announced retirement date, past or future; None: none announced


def _model_dir() -> Path:
    return asset_root() / "model"


@cache
def sku_facts() -> dict[str, SkuFacts]:
    """SKU name -> its catalog row."""
    with open(_model_dir() / "sku_catalog.csv", newline="") as handle:
        return {
            row["sku"]: SkuFacts(
                row["sku"],
                SkuSpec(int(row["vcpus"]), int(row["gpus"]), int(row["memory_gib"]), int(row["temp_disk_gib"])),
                row["gpu_model"],
                row["compute_capability"],
                date.fromisoformat(row["retirement_date"]) if row["retirement_date"] else None,
            )
            for row in csv.DictReader(handle)
        }


@cache
def sku_catalog() -> dict[str, SkuSpec]:
    """SKU name -> its vCPUs|GPUs|memory|temp disk, from the catalog with sources."""
    return {name: facts.spec for name, facts in sku_facts().items()}


def canonical_sku(name: str | None) -> str | None:
    """The catalog's spelling of a SKU name (Azure compares them case-insensitively); None if unknown."""
    wanted = (name or "").lower()
    return next((known for known in sku_facts() if known.lower() == wanted), None)


@cache
def supported_inference_skus() -> frozenset[str]:
    """SKUs Azure's asset CI accepts for inference, compared case-insensitively."""
    lines = (_model_dir() / "supported_inference_skus.txt").read_text().split()
    return frozenset(line.lower() for line in lines)


def per_field_minimum(skus: list[str]) -> SkuSpec:
    """min-sku-spec as Azure's asset CI computes it: each field's minimum taken separately."""
    catalog = sku_catalog()
    specs = [catalog[s] for s in skus]
    return SkuSpec(
        min(s.vcpus for s in specs),
        min(s.gpus for s in specs),
        min(s.memory_gb for s in specs),
        min(s.temp_disk_gb for s in specs),
    )


def meets(sku: str, minimum: SkuSpec) -> bool:
    """True when every field of the SKU is at least the minimum's."""
    have = sku_catalog()[sku]
    return (
        have.vcpus >= minimum.vcpus
        and have.gpus >= minimum.gpus
        and have.memory_gb >= minimum.memory_gb
        and have.temp_disk_gb >= minimum.temp_disk_gb
    )

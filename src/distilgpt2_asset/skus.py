"""The offline SKU catalog (model/sku_catalog.csv) and the lists of SKUs that endpoints support."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from .paths import asset_root
from .spec import SkuSpec


def _model_dir() -> Path:
    return asset_root() / "model"


@lru_cache(maxsize=None)
def sku_catalog() -> dict[str, SkuSpec]:
    """SKU name -> its vCPUs|GPUs|memory|temp disk, from the catalog with sources."""
    with open(_model_dir() / "sku_catalog.csv", newline="") as handle:
        return {
            row["sku"]: SkuSpec(int(row["vcpus"]), int(row["gpus"]), int(row["memory_gib"]), int(row["temp_disk_gib"]))
            for row in csv.DictReader(handle)
        }


@lru_cache(maxsize=None)
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

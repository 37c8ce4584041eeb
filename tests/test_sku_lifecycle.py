"""The SKU catalog's lifecycle facts, and which SKUs each scenario can still use."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from distilgpt2_asset import sku_lifecycle
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.sku_lifecycle import (
    TORCH_CUDA_ARCHITECTURES,
    GpuRuntime,
    allow_listed,
    nearest_usable,
    sku_status,
    torch_runtime,
    training_runtime,
)
from distilgpt2_asset.skus import sku_facts
from distilgpt2_asset.spec import SCENARIOS

REPO_ROOT = Path(__file__).resolve().parent.parent

CATALOG = REPO_ROOT / "model" / "sku_catalog.csv"
BEFORE, AFTER = date(2027, 1, 1), date(2029, 1, 1)  # NCv3 and NVv3 retired; DSv2 and Fsv2 announced


def catalog_rows() -> list[dict[str, str]]:
    with open(CATALOG, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_catalog_row_names_its_sources():
    for row in catalog_rows():
        assert row["source"] and row["retirement_source"], row["sku"]
        if int(row["gpus"]):
            assert row["gpu_model"].startswith("NVIDIA") and row["compute_capability"] and row["gpu_source"], row["sku"]
            assert "developer.nvidia.com" in row["gpu_source"], row["sku"]
        else:
            assert not row["gpu_model"] and not row["compute_capability"], row["sku"]


@pytest.mark.parametrize(
    "sku, gpu, capability, retirement",
    [
        ("Standard_NC6s_v3", "NVIDIA V100 16GB", "7.0", date(2025, 9, 30)),
        ("Standard_NC24rs_v3", "NVIDIA V100 16GB", "7.0", date(2025, 9, 30)),
        ("Standard_NV12s_v3", "NVIDIA Tesla M60", "5.2", date(2026, 9, 30)),
        ("Standard_ND40rs_v2", "NVIDIA V100 32GB SXM2", "7.0", None),
        ("Standard_NC4as_T4_v3", "NVIDIA T4", "7.5", None),
        ("Standard_NC24ads_A100_v4", "NVIDIA A100 80GB PCIe", "8.0", None),
        ("Standard_ND96amsr_A100_v4", "NVIDIA A100 80GB SXM", "8.0", None),
        ("Standard_DS3_v2", "", "", date(2028, 5, 1)),
        ("Standard_F8s_v2", "", "", date(2028, 11, 15)),
        ("Standard_E2s_v3", "", "", None),
    ],
)
def test_catalog_facts(sku, gpu, capability, retirement):
    facts = sku_facts()[sku]
    assert (facts.gpu_model, facts.compute_capability, facts.retirement) == (gpu, capability, retirement)


def test_a_gpu_runs_builds_for_its_major_version_up_to_its_minor():
    cu126, cu130 = (GpuRuntime(build, TORCH_CUDA_ARCHITECTURES[build]) for build in ("cu126", "cu130"))
    assert [cu126.runs_on(cc) for cc in ("5.2", "7.0", "7.5", "8.0", "8.9")] == [True] * 5
    assert [cu130.runs_on(cc) for cc in ("5.2", "7.0", "7.5", "8.0", "9.0")] == [False, False, True, True, True]
    assert GpuRuntime("engine", minimum="7.0").runs_on("7.0") and not GpuRuntime("engine", minimum="7.0").runs_on("6.1")


def test_the_training_environment_is_torchs_cuda_12_6_build():
    runtime = training_runtime()
    assert runtime.name == "torch 2.13.0+cu126"
    assert runtime.architectures == TORCH_CUDA_ARCHITECTURES["cu126"]


def test_every_live_finetune_sku_has_a_gpu_the_training_environment_runs(asset_spec):
    live = [sku for sku in allow_listed(asset_spec, "finetune") if sku_facts()[sku].retirement is None]
    assert "Standard_ND40rs_v2" in live and "Standard_NC4as_T4_v3" in live
    for sku in live:
        assert training_runtime().runs_on(sku_facts()[sku].compute_capability), sku


def _conda(tmp_path, torch_pin: str):
    path = tmp_path / "conda.yml"
    path.write_text(f"dependencies:\n  - python=3.11\n  - pip:\n      - {torch_pin}\n      - numpy==2.4.6\n")
    return path


def test_with_pypis_torch_a_v100_sku_is_refused_for_finetune_naming_its_capability(tmp_path, monkeypatch):
    runtime = torch_runtime(_conda(tmp_path, "torch==2.13.0"))
    assert runtime.name == "torch 2.13.0+cu130"  # what PyPI serves for 2.13.0
    monkeypatch.setattr(sku_lifecycle, "training_runtime", lambda: runtime)
    status = sku_status("Standard_ND40rs_v2", "finetune", BEFORE)
    assert status.blocked == (
        "Standard_ND40rs_v2's NVIDIA V100 32GB SXM2 (compute capability 7.0) cannot run torch 2.13.0+cu130, "
        "which needs compute capability 7.5, 8.0, 8.6, 9.0, 10.0, 12.0 (or a later minor of the same major)"
    )
    assert sku_status("Standard_ND40rs_v2", "inference", BEFORE).usable  # CTranslate2 runs 7.0


@pytest.mark.parametrize("pin", ["torch==2.13.0+cpu", "torch>=2.13"])
def test_a_training_torch_without_a_known_cuda_build_is_refused(tmp_path, pin):
    with pytest.raises(AssetError, match="torch"):
        torch_runtime(_conda(tmp_path, pin))


def test_retirement_dates_block_on_and_after_the_date_and_announce_before_it():
    assert (
        sku_status("Standard_DS3_v2", "inference", BEFORE).notice
        == "Standard_DS3_v2: retirement announced for 2028-05-01"
    )
    assert (
        sku_status("Standard_DS3_v2", "inference", date(2028, 5, 1)).blocked
        == "Standard_DS3_v2 was retired on 2028-05-01"
    )
    assert sku_status("Standard_E2s_v3", "inference", AFTER) == sku_lifecycle.SkuStatus("Standard_E2s_v3")


@pytest.mark.parametrize(
    "sku, scenario, nearest",
    [
        ("Standard_NC6s_v3", "finetune", "Standard_NC8as_T4_v3"),  # one GPU, then vCPUs and memory
        ("Standard_NC24s_v3", "finetune", "Standard_NC64as_T4_v3"),  # four GPUs
        ("Standard_NV48s_v3", "finetune", "Standard_NC64as_T4_v3"),
        ("Standard_NC12s_v3", "inference", "Standard_NC48ads_A100_v4"),
    ],
)
def test_the_nearest_usable_sku_has_the_same_gpu_count_and_the_closest_size(asset_spec, sku, scenario, nearest):
    assert nearest_usable(sku, allow_listed(asset_spec, scenario), scenario, BEFORE) == nearest


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_default_sku_of_the_committed_asset_is_retired_or_unrunnable(asset_spec, scenario):
    from distilgpt2_asset.backends import ModelInfo, pick_sku

    model = ModelInfo(
        asset_spec.name, asset_spec.version, "x", asset_spec.string_tags(), asset_spec.string_properties()
    )
    assert sku_status(pick_sku(model, scenario), scenario).usable

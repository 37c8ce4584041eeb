"""What both backends share: reading a registry's tags back, and choosing a SKU that fits."""

from __future__ import annotations

import json

import pytest

from distilgpt2_asset.backends import (
    ModelInfo,
    endpoint_name,
    model_overview,
    open_backend,
    pick_sku,
    sku_fits,
    sku_table,
)
from distilgpt2_asset.backends.base import parse_list_tag
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.skus import meets, sku_catalog
from distilgpt2_asset.spec import SCENARIOS


@pytest.fixture
def registered(asset_spec) -> ModelInfo:
    """spec.yaml's version as a registry returns it: tags and properties as strings."""
    return ModelInfo(
        asset_spec.name, asset_spec.version, "models:/x/1", asset_spec.string_tags(), asset_spec.string_properties()
    )


@pytest.mark.parametrize(
    "stored",
    [
        json.dumps(["Standard_DS3_v2", "Standard_F4s_v2"]),  # our registries
        "['Standard_DS3_v2', 'Standard_F4s_v2']",  # azureml's Python literal
        "[Standard_DS3_v2, Standard_F4s_v2]",  # unquoted
        "Standard_DS3_v2, Standard_F4s_v2",
    ],
)
def test_list_tags_read_back_in_every_form_registries_store_them(stored):
    assert parse_list_tag(stored) == ["Standard_DS3_v2", "Standard_F4s_v2"]


def test_model_info_reads_allow_lists_and_minimums_from_string_tags(registered, asset_spec):
    for scenario in SCENARIOS:
        assert registered.allow_list(scenario) == asset_spec.allow_list(scenario)
        assert registered.min_sku_spec(scenario) == asset_spec.min_sku_spec(scenario)
    assert registered.task == asset_spec.task


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_picked_sku_is_the_smallest_allow_listed_sku_meeting_the_minimum(registered, asset_spec, scenario):
    sku = pick_sku(registered, scenario)
    minimum = asset_spec.min_sku_spec(scenario)
    assert sku in asset_spec.allow_list(scenario) and meets(sku, minimum)
    fitting = [s for s in asset_spec.allow_list(scenario) if meets(s, minimum)]

    def size(name: str) -> tuple[int, int, int]:
        return sku_catalog()[name].gpus, sku_catalog()[name].vcpus, sku_catalog()[name].memory_gb

    assert size(sku) == min(size(s) for s in fitting)
    assert (sku_catalog()[sku].gpus > 0) == (minimum.gpus > 0)


def test_sku_table_lists_the_whole_allow_list_fitting_first(registered, asset_spec):
    fits = sku_fits(registered, "inference")
    assert sorted(f.sku for f in fits) == sorted(asset_spec.allow_list("inference"))
    flags = [f.fits for f in fits]
    assert flags == sorted(flags, reverse=True)
    assert list(sku_table(registered, "inference").index) == [f.sku for f in fits]


def test_a_preferred_sku_is_taken_when_it_fits_and_refused_with_the_reason_otherwise(registered):
    assert pick_sku(registered, "inference", "standard_f8s_v2") == "Standard_F8s_v2"
    with pytest.raises(
        AssetError,
        match="Standard_NV6 cannot run inference: Standard_NV6 is not in distilgpt2's inference_compute_allow_list",
    ):
        pick_sku(registered, "inference", "Standard_NV6")


def test_a_sku_below_the_minimum_is_marked_and_refused(registered):
    raised = dict(registered.properties, **{"inference-min-sku-spec": "8|0|8|28"})
    model = ModelInfo(registered.name, registered.version, registered.uri, registered.tags, raised)
    below = next(f for f in sku_fits(model, "inference") if f.sku == "Standard_DS3_v2")
    assert not below.fits and below.rule == "min-sku-spec"
    assert below.reason == "(4|0|14|28) is below inference-min-sku-spec 8|0|8|28 (vCPUs|GPUs|memoryGB|tempDiskGB)"
    with pytest.raises(AssetError, match="below inference-min-sku-spec"):
        pick_sku(model, "inference", "Standard_DS3_v2")


def test_overview_shows_task_licence_and_minimums(registered, asset_spec):
    overview = model_overview(registered)["value"]
    assert overview["task"] == asset_spec.task
    assert overview["license"] == asset_spec.tags["license"]
    assert overview["finetune minimum (vCPUs|GPUs|memoryGB|tempDiskGB)"] == str(asset_spec.min_sku_spec("finetune"))


def test_endpoint_names_fit_azure_rules(registered):
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name

    long_name = ModelInfo("distilgpt2-text-classification", "1", "x", {}, {})
    for model in (registered, long_name):
        name = endpoint_name(model)
        assert len(name) <= 32
        validate_endpoint_or_deployment_name(name)


def test_an_unknown_backend_is_refused():
    with pytest.raises(AssetError, match="backend 'aws': expected one of local, azure"):
        open_backend("aws")


def test_azure_needs_workspace_settings(monkeypatch):
    for variable in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(
        AssetError, match="missing Azure ML workspace settings: --subscription-id or AZURE_SUBSCRIPTION_ID"
    ):
        open_backend("azure", resource_group="rg", workspace="ws")


@pytest.mark.parametrize(
    "scenario, retired, date, nearest",
    [
        ("finetune", "Standard_NC6s_v3", "2025-09-30", "Standard_NC8as_T4_v3"),
        ("finetune", "standard_nv12s_v3", "2026-09-30", "Standard_NC16as_T4_v3"),
        ("inference", "Standard_NC24s_v3", "2025-09-30", "Standard_NC64as_T4_v3"),
    ],
)
def test_a_retired_sku_is_never_picked_and_refused_naming_its_date_and_the_nearest_live_one(
    registered, scenario, retired, date, nearest
):
    fit = next(f for f in sku_fits(registered, scenario) if f.sku.lower() == retired.lower())
    assert not fit.fits and fit.reason.endswith(f"was retired on {date}")
    with pytest.raises(AssetError) as refused:
        pick_sku(registered, scenario, retired)
    assert str(refused.value) == (
        f"instance type {retired} cannot run {scenario}: {fit.sku} was retired on {date}; "
        f"the nearest live SKU of the {scenario} allow-list is {nearest}"
    )


def test_a_gpu_the_finetune_software_cannot_run_is_refused_naming_its_capability(registered, monkeypatch):
    from distilgpt2_asset import sku_lifecycle

    cuda13 = sku_lifecycle.GpuRuntime("torch 2.13.0+cu130", sku_lifecycle.TORCH_CUDA_ARCHITECTURES["cu130"])
    monkeypatch.setattr(sku_lifecycle, "training_runtime", lambda: cuda13)
    with pytest.raises(
        AssetError,
        match=r"Standard_ND40rs_v2's NVIDIA V100 32GB SXM2 \(compute capability 7.0\) cannot run "
        r"torch 2.13.0\+cu130.*; the nearest live SKU of the finetune allow-list is Standard_ND96asr_v4$",
    ):
        pick_sku(registered, "finetune", "Standard_ND40rs_v2")


def test_an_announced_retirement_is_picked_with_a_note(registered, capsys):
    assert pick_sku(registered, "inference", "Standard_DS3_v2") == "Standard_DS3_v2"
    assert capsys.readouterr().out == "note: Standard_DS3_v2: retirement announced for 2028-05-01\n"

"""The local backend's registry step and its refusals (the notebooks exercise deploy, evaluate, finetune)."""

from __future__ import annotations

import pytest

from distilgpt2_asset.backends import open_backend
from distilgpt2_asset.errors import AssetError


def test_find_model_builds_and_registers_once_then_reads_the_registry(isolated_home, asset_spec, tiny_model_dir, monkeypatch):
    model = open_backend("local", model_source=str(tiny_model_dir)).find_model()
    assert (model.name, model.version, model.uri) == (asset_spec.name, asset_spec.version, f"models:/{asset_spec.name}/1")
    assert model.allow_list("inference") == asset_spec.allow_list("inference")
    assert model.min_sku_spec("inference") == asset_spec.min_sku_spec("inference")
    assert (model.path / "MLmodel").is_file() and str(isolated_home) in str(model.path)

    def no_build(*args, **kwargs):
        raise AssertionError("the registered build of this source is used as it is")

    monkeypatch.setattr("distilgpt2_asset.build.build_mlflow_model", no_build)
    assert open_backend("local", model_source=str(tiny_model_dir)).find_model() == model


def test_a_sku_the_deployment_checks_refuse_starts_no_server(isolated_home, asset_spec, tiny_mlflow_model):
    from distilgpt2_asset.backends import ModelInfo

    session = open_backend("local")
    model = ModelInfo(asset_spec.name, asset_spec.version, "models:/distilgpt2/1", asset_spec.string_tags(), {}, tiny_mlflow_model)
    with pytest.raises(AssetError, match="'Standard_NV6' is not in spec.yaml's inference_compute_allow_list"):
        session.deploy(model, "Standard_NV6")
    assert session.endpoints == []

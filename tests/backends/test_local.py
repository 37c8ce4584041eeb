"""The local backend's registry step and its refusals (the notebooks exercise deploy, evaluate, finetune)."""

from __future__ import annotations

import pytest

from distilgpt2_asset.backends import open_backend
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.registry import LocalRegistry


def test_the_pinned_build_is_found_in_the_registry_with_its_tags_read_back(
    isolated_home, asset_spec, pinned_mlflow_model
):
    LocalRegistry().register(asset_spec, pinned_mlflow_model)
    model = open_backend("local").find_model()
    assert (model.name, model.version, model.uri) == (
        asset_spec.name,
        asset_spec.version,
        f"models:/{asset_spec.name}/1",
    )
    assert model.allow_list("inference") == asset_spec.allow_list("inference")
    assert model.min_sku_spec("inference") == asset_spec.min_sku_spec("inference")
    assert (model.path / "MLmodel").is_file() and str(isolated_home) in str(model.path)


def test_a_testing_model_source_is_built_once_and_used_unregistered(
    isolated_home, asset_spec, tiny_model_dir, monkeypatch
):
    model = open_backend("local", model_source=str(tiny_model_dir)).find_model()
    assert model.name == asset_spec.name and model.version.startswith("local-") and model.uri == model.path.as_uri()
    assert model.allow_list("inference") == asset_spec.allow_list("inference")
    assert model.min_sku_spec("inference") == asset_spec.min_sku_spec("inference")
    assert (model.path / "MLmodel").is_file() and str(isolated_home) in str(model.path)
    assert LocalRegistry().find(asset_spec.name, asset_spec.version) is None  # never registered as distilgpt2 15

    def no_build(*args, **kwargs):
        raise AssertionError("the build of this source is used as it is")

    monkeypatch.setattr("distilgpt2_asset.build.build_mlflow_model", no_build)
    assert open_backend("local", model_source=str(tiny_model_dir)).find_model() == model


def test_a_registered_version_that_is_not_the_pinned_build_is_refused(
    isolated_home, asset_spec, tiny_model_dir, tiny_mlflow_model
):
    LocalRegistry().register(asset_spec, tiny_mlflow_model)  # as `publish --allow-unpinned` does on purpose
    with pytest.raises(
        AssetError, match=f"is a build of the local folder {tiny_model_dir}, not spec.yaml's distilgpt2@"
    ):
        open_backend("local").find_model()


def test_a_testing_build_left_in_the_default_folder_is_refused_not_registered(
    isolated_home, asset_spec, tiny_mlflow_model
):
    import shutil

    shutil.copytree(tiny_mlflow_model, isolated_home / "models" / "distilgpt2-15")
    with pytest.raises(AssetError, match=r"model_source=DIR"):
        open_backend("local").find_model()
    assert LocalRegistry().find(asset_spec.name, asset_spec.version) is None


def test_a_sku_the_deployment_checks_refuse_starts_no_server(isolated_home, asset_spec, tiny_mlflow_model):
    from distilgpt2_asset.backends import ModelInfo

    session = open_backend("local")
    model = ModelInfo(
        asset_spec.name, asset_spec.version, "models:/distilgpt2/1", asset_spec.string_tags(), {}, tiny_mlflow_model
    )
    with pytest.raises(AssetError, match="Standard_NV6 is not in spec.yaml's inference_compute_allow_list"):
        session.deploy(model, "Standard_NV6")
    assert session.endpoints == []


def test_autoscale_bounds_the_checks_refuse_start_no_server(isolated_home, asset_spec, tiny_mlflow_model):
    from distilgpt2_asset.backends import ModelInfo

    session = open_backend("local")
    model = ModelInfo(
        asset_spec.name, asset_spec.version, "models:/distilgpt2/1", asset_spec.string_tags(), {}, tiny_mlflow_model
    )
    with pytest.raises(AssetError, match="--autoscale 0:3: need 1 <= MIN <= MAX"):
        session.deploy(model, "Standard_DS3_v2", autoscale="0:3")
    assert session.endpoints == []

"""The local MLflow registry: spec.yaml's version, idempotent, refusing changed content, atomic."""

import json
import pickle
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.registry import (
    ASSET_VERSION_TAG,
    CONTENT_TAG,
    LocalRegistry,
    artifact_root,
    content_digest,
    registry_uri,
)
from distilgpt2_asset.spec import AssetSpec
from distilgpt2_scoring.model_files import ModelFilesError


def _with_version(spec, version):
    return AssetSpec(dict(spec.data, version=version), spec.path)


@pytest.fixture
def registry(isolated_home):
    return LocalRegistry()


@pytest.fixture
def changed_model(tiny_mlflow_model, tmp_path):
    """The tiny model with different content (an edited model card, manifest rewritten)."""
    from distilgpt2_scoring.model_files import write_manifest

    copy = tmp_path / "changed"
    shutil.copytree(tiny_mlflow_model, copy)
    with open(copy / "model_card.md", "a") as card:
        card.write("\nDifferent content.\n")
    write_manifest(copy)
    return copy


def test_default_registry_is_a_sqlite_file_under_the_home(isolated_home):
    assert registry_uri() == f"sqlite:///{isolated_home / 'registry.db'}"


def test_explicit_uri_and_mlflow_env_win(isolated_home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    assert registry_uri() == "sqlite:////tmp/elsewhere.db"
    assert registry_uri("sqlite:////tmp/explicit.db") == "sqlite:////tmp/explicit.db"


def test_registers_under_the_spec_name_with_tags_and_properties(registry, asset_spec, tiny_mlflow_model):
    result = registry.register(asset_spec, tiny_mlflow_model)
    assert (result.outcome, result.asset_version, result.mlflow_version) == ("created", "15", "1")
    version = registry.find("distilgpt2", "15")
    assert version.tags[ASSET_VERSION_TAG] == "15"
    assert len(version.tags[CONTENT_TAG]) == 64
    assert version.tags["task"] == "text-generation"
    assert version.tags["properties/SHA"] == asset_spec.revision
    assert version.tags["properties/inference-min-sku-spec"] == "2|0|8|28"
    assert version.tags["inference_compute_allow_list"] == asset_spec.string_tags()["inference_compute_allow_list"]


def test_registering_the_same_content_again_is_a_no_op(registry, asset_spec, tiny_mlflow_model):
    registry.register(asset_spec, tiny_mlflow_model)
    again = registry.register(asset_spec, tiny_mlflow_model)
    assert again.outcome == "unchanged"
    assert len(registry.client.search_model_versions("name = 'distilgpt2'")) == 1


def test_different_content_under_an_existing_version_is_refused(registry, asset_spec, tiny_mlflow_model, changed_model):
    registry.register(asset_spec, tiny_mlflow_model)
    with pytest.raises(AssetError, match="bump `version` in spec.yaml"):
        registry.register(asset_spec, changed_model)
    assert len(registry.client.search_model_versions("name = 'distilgpt2'")) == 1


def test_a_bumped_version_is_registered_alongside(registry, asset_spec, tiny_mlflow_model, changed_model):
    registry.register(asset_spec, tiny_mlflow_model)
    bumped = registry.register(_with_version(asset_spec, 16), changed_model)
    assert (bumped.outcome, bumped.asset_version, bumped.mlflow_version) == ("created", "16", "2")


def test_an_interrupted_registration_leaves_no_version_and_no_files(
    registry, asset_spec, tiny_mlflow_model, monkeypatch
):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(registry.client, "create_model_version", fail)
    with pytest.raises(KeyboardInterrupt):
        registry.register(asset_spec, tiny_mlflow_model)
    assert registry.find("distilgpt2", "15") is None
    assert not any((artifact_root(registry.uri) / "distilgpt2").iterdir())  # no copy, no staging folder


def test_the_registry_keeps_its_copy_in_a_folder_named_by_the_content_digest(registry, asset_spec, tiny_mlflow_model):
    result = registry.register(asset_spec, tiny_mlflow_model)
    digest = content_digest(tiny_mlflow_model)
    assert Path(result.source) == artifact_root(registry.uri) / "distilgpt2" / digest
    assert content_digest(Path(result.source)) == digest
    # The same content under a bumped version shares the folder; nothing is copied over it.
    bumped = registry.register(_with_version(asset_spec, 16), tiny_mlflow_model)
    assert bumped.source == result.source and len(list(Path(result.source).parent.iterdir())) == 1


def test_a_copy_that_no_longer_holds_its_content_is_never_reused(registry, asset_spec, tiny_mlflow_model):
    copy = Path(registry.register(asset_spec, tiny_mlflow_model).source)
    (copy / "MLmodel").write_text((copy / "MLmodel").read_text() + "# edited\n")
    with pytest.raises(AssetError, match="does not hold the content its name promises"):
        registry.register(_with_version(asset_spec, 16), tiny_mlflow_model)


def test_a_model_without_manifest_is_refused(registry, asset_spec, tiny_mlflow_model, tmp_path):
    copy = tmp_path / "nomanifest"
    shutil.copytree(tiny_mlflow_model, copy)
    (copy / "sha256-manifest.json").unlink()
    with pytest.raises(ModelFilesError, match="manifest missing"):  # the CLI shows it as one line, exit 2
        registry.register(asset_spec, copy)


def test_registered_model_loads_and_predicts_from_the_registry(registry, asset_spec, tiny_mlflow_model):
    import mlflow

    result = registry.register(asset_spec, tiny_mlflow_model)
    mlflow.set_registry_uri(registry.uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    prompt = ["I believe the meaning of life is"]
    few = model.predict(prompt, params={"max_new_tokens": 2, "do_sample": False, "return_full_text": False})
    more = model.predict(prompt, params={"max_new_tokens": 6, "do_sample": False, "return_full_text": False})
    assert few == ["to learn"] and more == ["to learn something new every day"]


def test_registration_records_the_model_scan_of_the_content(registry, asset_spec, tiny_mlflow_model):
    registry.register(asset_spec, tiny_mlflow_model)
    tags = registry.find("distilgpt2", "15").tags
    assert tags["properties/model_scan_verdict"] == "clean"
    assert tags["properties/model_scan_sha256"] == tags[CONTENT_TAG]
    assert json.loads(tags["properties/model_scan_tools"])["modelscan"] == metadata.version("modelscan")
    assert "pickle" in tags["properties/model_scan_rules"].split(",")


def test_a_folder_that_fails_the_model_scan_is_not_registered(registry, asset_spec, tiny_mlflow_model, tmp_path):
    from distilgpt2_scoring.model_files import write_manifest

    copy = shutil.copytree(tiny_mlflow_model, tmp_path / "with-pickle")
    (copy / "model" / "optimizer.pt").write_bytes(pickle.dumps({"step": 1}))
    write_manifest(copy)
    with pytest.raises(AssetError, match=r"refusing to register it:\n.* model/optimizer\.pt \[pickle\] a pickle"):
        registry.register(asset_spec, copy)
    assert registry.find("distilgpt2", "15") is None

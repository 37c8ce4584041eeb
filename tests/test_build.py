"""build: a Hugging Face snapshot becomes an MLflow model shaped like the published asset."""

import json
import shutil

import pytest
import yaml

from distilgpt2_asset.build import GENERATION_PARAMS, build_mlflow_model, pip_requirements, resolve_source
from distilgpt2_asset.errors import AssetError
from distilgpt2_scoring.model_files import MANIFEST_NAME, compute_manifest, verify_manifest


@pytest.fixture(scope="module")
def mlmodel(tiny_mlflow_model):
    return yaml.safe_load((tiny_mlflow_model / "MLmodel").read_text())


def test_flavors_match_the_published_asset(mlmodel):
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.transformers"
    transformers = mlmodel["flavors"]["transformers"]
    assert transformers["task"] == "text-generation"
    assert transformers["instance_type"] == "TextGenerationPipeline"
    assert transformers["pipeline_model_type"] == "GPT2LMHeadModel"
    assert transformers["tokenizer_type"].startswith("GPT2Tokenizer")


def test_signature_carries_the_published_params_and_defaults(mlmodel):
    params = {p["name"]: (p["type"], p["default"]) for p in json.loads(mlmodel["signature"]["params"])}
    assert params == {
        "top_p": ("double", 1.0),
        "temperature": ("double", 0.8),
        "max_new_tokens": ("long", 50),
        "do_sample": ("boolean", True),
        "return_full_text": ("boolean", True),
    }
    assert [p[0] for p in GENERATION_PARAMS] == list(params)
    assert json.loads(mlmodel["signature"]["inputs"])[0]["type"] == "string"
    assert json.loads(mlmodel["signature"]["outputs"])[0]["type"] == "string"


def test_metadata_names_base_model_image_and_source(mlmodel, asset_spec, tiny_model_dir):
    assert mlmodel["metadata"] == {
        "base_model_name": asset_spec.name,
        "base_model_task": asset_spec.task,
        "azureml.base_image": "mcr.microsoft.com/azureml/curated/mlflow-model-inference",
        "source_model_id": str(tiny_model_dir),
        "source_revision": "local",
        "is_finetuned_model": False,
    }


def test_pip_requirements_are_pinned_without_local_labels(tiny_mlflow_model):
    lines = (tiny_mlflow_model / "requirements.txt").read_text().split()
    assert lines == pip_requirements()
    assert all("==" in line and "+" not in line for line in lines)
    assert {line.split("==")[0] for line in lines} >= {"mlflow", "torch", "transformers"}


def test_weights_are_safetensors_only(tiny_mlflow_model):
    names = [p.relative_to(tiny_mlflow_model).as_posix() for p in tiny_mlflow_model.rglob("*") if p.is_file()]
    assert "model/model.safetensors" in names
    # The one .bin is the OpenVINO model's raw tensor data beside its .xml, never a pickle or a zip of pickles.
    assert not [n for n in names if n.endswith((".pt", ".pkl", ".pickle"))]
    assert [n for n in names if n.endswith(".bin")] == ["engines/openvino-int8/openvino_model.bin"]
    head = (tiny_mlflow_model / "engines" / "openvino-int8" / "openvino_model.bin").read_bytes()[:4]
    assert head[:1] != b"\x80" and head[:2] != b"PK"  # pickle protocol 2+ / zip (torch.save) magic


def test_manifest_lists_the_sha256_of_every_file(tiny_mlflow_model):
    files = verify_manifest(tiny_mlflow_model)
    on_disk = {p.relative_to(tiny_mlflow_model).as_posix() for p in tiny_mlflow_model.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {MANIFEST_NAME}
    assert all(len(digest) == 64 for digest in files.values())


def test_the_same_input_gives_the_same_file_hashes(asset_spec, tiny_model_dir, tiny_mlflow_model, tmp_path):
    again = build_mlflow_model(asset_spec, str(tiny_model_dir), None, tmp_path / "again")
    assert compute_manifest(again) == compute_manifest(tiny_mlflow_model)
    assert (again / MANIFEST_NAME).read_bytes() == (tiny_mlflow_model / MANIFEST_NAME).read_bytes()


def test_pyfunc_predict_honours_max_new_tokens_and_return_full_text(tiny_mlflow_model):
    import mlflow

    model = mlflow.pyfunc.load_model(str(tiny_mlflow_model))
    prompt = "I believe the meaning of life is"
    short = model.predict([prompt], params={"max_new_tokens": 3, "do_sample": False, "return_full_text": False})
    longer = model.predict([prompt], params={"max_new_tokens": 8, "do_sample": False, "return_full_text": True})
    assert short == ["to learn something"]  # MLflow strips the continuation's leading space
    assert longer == [prompt + " to learn something new every day and to"]


def test_rebuilding_over_an_existing_output_replaces_it(asset_spec, tiny_model_dir, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    build_mlflow_model(asset_spec, str(tiny_model_dir), None, target)
    assert not (target / "stale.txt").exists()
    assert not (tmp_path / "out.partial").exists()


def test_a_hub_revision_must_be_a_commit_sha():
    with pytest.raises(AssetError, match="40-character commit SHA"):
        resolve_source("distilgpt2", "main")


def test_offline_without_a_local_source_says_how_to_pass_one():
    with pytest.raises(AssetError, match="--source DIR"):
        resolve_source("distilgpt2", "38cc92ec43315abd5136313225e95acc5986876c")


def test_pickled_weights_are_refused(asset_spec, tiny_model_dir, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(AssetError, match="safetensors"):
        build_mlflow_model(asset_spec, str(folder), None, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_build_whose_output_fails_the_model_scan_is_removed_not_finished(asset_spec, tiny_model_dir, tmp_path):
    from distilgpt2_asset.build import _load_pipeline, _signature, model_card, save_mlflow_model

    def add_a_script(staging):
        (staging / "serve.sh").write_text("#!/bin/sh\n")

    with pytest.raises(AssetError, match=r"refusing to finish the build:\n.* serve\.sh \[executable\] a script"):
        save_mlflow_model(
            _load_pipeline(tiny_model_dir),
            tmp_path / "out",
            task=asset_spec.task,
            signature=_signature(),
            metadata={},
            model_card=model_card(asset_spec),
            source=str(tiny_model_dir),
            add_files=add_a_script,
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()

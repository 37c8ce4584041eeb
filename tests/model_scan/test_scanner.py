"""scan_model over whole folders: the layouts it knows, the manifest, and folders shaped like others' builds."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.model_scan import scan_model
from distilgpt2_asset.registry import content_digest
from distilgpt2_scoring.model_files import sha256_file, write_manifest


def named(report):
    return sorted((f.file, f.rule) for f in report.failing)


def test_the_scanned_content_digest_is_the_registrys(tiny_mlflow_model):
    assert scan_model(tiny_mlflow_model).content_sha256 == content_digest(tiny_mlflow_model)


def test_pytorch_weights_as_microsoft_publishes_them_are_a_finding_that_says_what_they_are(mlflow_copy):
    """mlflow.transformers.save_model may write model/pytorch_model.bin (a zip of pickles) instead of safetensors."""
    (mlflow_copy / "model" / "model.safetensors").unlink()
    torch.save({"transformer.wte.weight": torch.zeros(4, 2)}, mlflow_copy / "model" / "pytorch_model.bin")
    write_manifest(mlflow_copy)
    report = scan_model(mlflow_copy)
    messages = {f.message for f in report.failing if f.file == "model/pytorch_model.bin" and f.rule == "pickle"}
    assert messages == {
        "a PyTorch checkpoint (torch.save: a zip of pickles): loading it can run arbitrary code; weights must be "
        "safetensors"
    }
    assert ("model/*.safetensors", "layout") in named(report)


def add_openvino_engine(folder, weights: bytes):
    """The build's OpenVINO model with other weights bytes in its .bin."""
    (folder / "engines" / "openvino-int8" / "openvino_model.bin").write_bytes(weights)
    write_manifest(folder)


def test_the_built_openvino_engine_scans_clean(mlflow_copy):
    report = scan_model(mlflow_copy)
    assert report.findings == ()
    assert ("engines/openvino-int8/openvino_model.bin", "Model Scan did not scan file") in report.modelscan.skipped


def test_an_openvino_engine_with_raw_tensor_data_in_its_bin_scans_clean(mlflow_copy):
    rng = np.random.default_rng(0)
    add_openvino_engine(
        mlflow_copy,
        rng.integers(-128, 127, 1 << 16, dtype=np.int8).tobytes()
        + rng.standard_normal(4096).astype(np.float32).tobytes(),
    )
    report = scan_model(mlflow_copy)
    assert report.findings == ()
    assert ("engines/openvino-int8/openvino_model.bin", "Model Scan did not scan file") in report.modelscan.skipped


def test_a_pickle_named_like_openvino_weights_is_named(mlflow_copy):
    add_openvino_engine(mlflow_copy, pickle.dumps({"weights": [0.5]}))
    assert named(scan_model(mlflow_copy)) == [("engines/openvino-int8/openvino_model.bin", "pickle")]


def test_finetunes_metrics_and_curve_are_listed_extras(mlflow_copy):
    (mlflow_copy / "metrics.json").write_text("{}")
    (mlflow_copy / "training-curve.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    write_manifest(mlflow_copy)
    assert scan_model(mlflow_copy).findings == ()


def test_the_manifest_must_cover_every_file_with_its_current_hash(mlflow_copy):
    card = mlflow_copy / "model_card.md"
    built = sha256_file(card)
    with open(card, "a") as handle:
        handle.write("edited after the build\n")
    (mlflow_copy / "notes.md").write_text("written after the build")
    assert [(f.file, f.message) for f in scan_model(mlflow_copy).failing if f.rule == "manifest"] == [
        ("model_card.md", f"sha256 {sha256_file(card)[:12]}… does not match the manifest's {built[:12]}…"),
        ("notes.md", "not in the manifest"),
    ]


def test_a_folder_without_its_manifest_is_a_finding(mlflow_copy):
    (mlflow_copy / "sha256-manifest.json").unlink()
    assert ("sha256-manifest.json", "manifest") in named(scan_model(mlflow_copy))


def test_a_registered_models_root_is_scanned_through_its_mlflow_folder(mlflow_copy, tmp_path):
    root = tmp_path / "registered"
    root.mkdir()
    shutil.move(mlflow_copy, root / "mlflow_model_folder")
    report = scan_model(root)
    assert report.folder == root / "mlflow_model_folder" and report.verdict == "clean"


def test_a_folder_that_is_no_model_is_one_clear_error(tmp_path):
    with pytest.raises(AssetError, match="neither an MLflow model .* nor a Hugging Face model folder"):
        scan_model(tmp_path)
    with pytest.raises(AssetError, match="no such folder"):
        scan_model(tmp_path / "missing")


def test_a_hugging_face_root_with_a_clean_mlflow_build_below_it_is_scanned_as_the_root(
    mlflow_copy, snapshot_copy, asset_spec, tmp_path
):
    """The attack: build loads the root (a pickle, code, an auto_map config) while the scan read only x/."""
    shutil.copytree(mlflow_copy, snapshot_copy / "x")
    (snapshot_copy / "pytorch_model.bin").write_bytes(pickle.dumps({"w": [0.0]}))
    (snapshot_copy / "modeling_evil.py").write_text("import os\n")
    config = json.loads((snapshot_copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.Evil"}
    (snapshot_copy / "config.json").write_text(json.dumps(config))
    report = scan_model(snapshot_copy)
    assert report.folder == snapshot_copy and report.layout == "huggingface"
    assert {("pytorch_model.bin", "pickle"), ("modeling_evil.py", "layout"), ("config.json", "custom-code")} <= set(
        named(report)
    )
    assert ("x/MLmodel", "layout") in named(report)  # every folder under it is read
    from distilgpt2_asset.build import build_mlflow_model

    with pytest.raises(AssetError, match="refusing to build from it"):
        build_mlflow_model(asset_spec, str(snapshot_copy), None, tmp_path / "out")


def test_files_beside_a_registered_models_mlflow_folder_are_read_and_named(mlflow_copy, tmp_path):
    root = tmp_path / "registered"
    root.mkdir()
    shutil.move(mlflow_copy, root / "mlflow_model_folder")
    (root / "extra").mkdir()
    (root / "extra" / "state.pkl").write_bytes(pickle.dumps({"w": [0.0]}))
    report = scan_model(root)
    assert report.folder == root / "mlflow_model_folder"
    assert named(report) == [("extra/state.pkl", "layout"), ("extra/state.pkl", "pickle")]

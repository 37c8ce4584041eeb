"""layout: the declarative tables, and a walk that never follows a link."""

from __future__ import annotations

import os
import shutil

from distilgpt2_asset.finetune import CURVE_FILE, METRICS_FILE
from distilgpt2_asset.model_scan.layout import HUGGINGFACE, MLFLOW, check_layout, walk


def test_the_openvino_engine_and_finetune_extras_are_in_the_mlflow_table():
    kinds = {
        name: MLFLOW.entry_for(name).kind
        for name in (
            "engines/openvino-int8/openvino_model.xml",
            "engines/openvino-int8/openvino_model.bin",
            "engines/openvino-int8/generation_config.json",
            METRICS_FILE,
            CURVE_FILE,
            "model/model-00001-of-00002.safetensors",
        )
    }
    assert kinds == {
        "engines/openvino-int8/openvino_model.xml": "data",
        "engines/openvino-int8/openvino_model.bin": "data",
        "engines/openvino-int8/generation_config.json": "data",
        METRICS_FILE: "extra",
        CURVE_FILE: "extra",
        "model/model-00001-of-00002.safetensors": "safetensors",
    }


def test_a_pattern_never_matches_across_folders():
    assert MLFLOW.entry_for("model/nested/model.safetensors") is None
    assert HUGGINGFACE.entry_for("onnx/config.json") is None


def test_files_outside_the_layout_and_missing_required_files_are_findings(tiny_model_dir):
    files = walk(tiny_model_dir).files
    files["notes/todo.md"] = files.pop("model.safetensors")
    assert sorted((f.file, f.message) for f in check_layout(HUGGINGFACE, files)) == [
        ("*.safetensors", "missing: the huggingface layout requires it"),
        ("notes/todo.md", "not part of the huggingface layout (nor a listed extra)"),
    ]


def test_links_and_special_files_are_findings_and_never_followed(tmp_path):
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "outside").symlink_to("/etc")
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    os.mkfifo(tmp_path / "pipe")
    walked = walk(tmp_path)
    assert list(walked.files) == ["real.json"]
    assert [(f.file, f.rule) for f in walked.findings] == [
        ("outside", "symlink"),
        ("passwd", "symlink"),
        ("pipe", "layout"),
    ]


def test_the_hugging_face_caches_own_links_are_read_through(tiny_model_dir, tmp_path):
    """snapshot_download's layout: snapshots/<revision>/<file> -> ../../blobs/<hash>."""
    repo = tmp_path / "models--distilgpt2"
    snapshot, blobs = repo / "snapshots" / ("a" * 40), repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for index, path in enumerate(sorted(tiny_model_dir.iterdir())):
        shutil.copy(path, blobs / f"blob{index}")
        (snapshot / path.name).symlink_to(f"../../blobs/blob{index}")
    (snapshot / "stray").symlink_to("/etc/passwd")
    walked = walk(snapshot)
    assert walked.files["config.json"].parent == blobs.resolve()
    assert sorted(walked.files) == sorted(p.name for p in tiny_model_dir.iterdir())
    assert [(f.file, f.rule) for f in walked.findings] == [("stray", "symlink")]

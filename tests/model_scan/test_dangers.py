"""Issue 17's acceptance: each danger planted in a copy of a good folder is named by the scan (file
and rule), and build and publish refuse it; the clean builds scan clean."""

from __future__ import annotations

import json

import pytest
from publish_helpers import make_asset_root, publish

from distilgpt2_asset.build import build_mlflow_model
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.model_scan import scan_model
from distilgpt2_asset.registry import LocalRegistry
from distilgpt2_scoring.model_files import MANIFEST_NAME, sha256_file

from .dangers import DANGERS


def plant_in_mlflow(name, folder):
    path, rules = DANGERS[name](folder, folder / "model")
    consistent_manifest(folder)  # the other rules must find the danger by themselves
    return path.relative_to(folder).as_posix(), rules


def consistent_manifest(folder):
    """A manifest covering every file as an attacker would write it, links followed (our own
    write_manifest refuses to hash through a link)."""
    files = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    (folder / MANIFEST_NAME).write_text(
        json.dumps({"algorithm": "sha256", "files": files}, indent=2, sort_keys=True) + "\n"
    )


def test_the_tiny_models_build_and_snapshot_scan_clean(tiny_mlflow_model, tiny_model_dir):
    for folder, layout in ((tiny_mlflow_model, "mlflow"), (tiny_model_dir, "huggingface")):
        report = scan_model(folder)
        assert (report.layout, report.verdict, report.findings) == (layout, "clean", ())


@pytest.mark.parametrize("danger", DANGERS)
def test_the_scan_names_the_file_and_rule(danger, mlflow_copy):
    relative, rules = plant_in_mlflow(danger, mlflow_copy)
    report = scan_model(mlflow_copy)
    assert report.verdict == "failed"
    assert {(relative, rule) for rule in rules} <= {(f.file, f.rule) for f in report.failing}
    assert not (mlflow_copy.parent / "pwned").exists()  # nothing was unpickled


@pytest.mark.parametrize("danger", DANGERS)
def test_build_refuses_a_source_folder_holding_it(danger, asset_spec, snapshot_copy, tmp_path):
    path, rules = DANGERS[danger](snapshot_copy, snapshot_copy)
    relative = path.relative_to(snapshot_copy).as_posix()
    with pytest.raises(AssetError) as refused:
        build_mlflow_model(asset_spec, str(snapshot_copy), None, tmp_path / "built")
    message = str(refused.value)
    assert "refusing to build from it" in message
    assert all(f" {relative} [{rule}] " in message for rule in rules), message
    assert not (tmp_path / "built").exists() and not (tmp_path / "built.partial").exists()


@pytest.mark.parametrize("danger", DANGERS)
def test_publish_refuses_an_mlflow_folder_holding_it(danger, mlflow_copy, tmp_path, monkeypatch, isolated_home, capsys):
    monkeypatch.setenv("DISTILGPT2_ASSET_ROOT", str(make_asset_root(tmp_path / "asset")))
    relative, rules = plant_in_mlflow(danger, mlflow_copy)
    code, out, err = publish(capsys, "--model", str(mlflow_copy), "--allow-unpinned")
    assert (code, out) == (2, "")
    assert "refusing to publish" in err and all(f" {relative} [{rule}] " in err for rule in rules), err
    assert LocalRegistry().find("distilgpt2", "15") is None

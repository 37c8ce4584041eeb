"""What the server serves: our builds checked against their manifest, any folder hashed to one
digest a deployment can pin."""

from __future__ import annotations

import os
import shutil

import pytest

from distilgpt2_asset.registry import content_digest
from distilgpt2_scoring.model_files import MANIFEST_NAME, ModelFilesError, open_model


def test_our_build_is_checked_against_its_manifest_and_digests_as_registered(tiny_mlflow_model):
    content = open_model(tiny_mlflow_model)
    assert content.has_manifest and content.digest == content_digest(tiny_mlflow_model)


def test_a_folder_without_a_manifest_is_hashed_as_found(published_model):
    content = open_model(published_model)
    assert not content.has_manifest and content.folder.name == "mlflow_model_folder"
    assert MANIFEST_NAME not in content.files and "MLmodel" in content.files and len(content.digest) == 64


def test_a_pinned_digest_must_match_and_both_digests_are_named(tiny_mlflow_model):
    digest = content_digest(tiny_mlflow_model)
    assert open_model(tiny_mlflow_model, digest.upper()).digest == digest
    with pytest.raises(ModelFilesError) as caught:
        open_model(tiny_mlflow_model, "0" * 64)
    assert digest in str(caught.value) and "0" * 64 in str(caught.value)


@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_a_link_or_a_fifo_in_the_folder_is_refused_by_name(tiny_mlflow_model, tmp_path, plant):
    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    planted = model / "model" / "extra"
    planted.symlink_to("/etc/passwd") if plant == "symlink" else os.mkfifo(planted)
    with pytest.raises(ModelFilesError, match=r"model/extra is (a symbolic link|not a regular file)"):
        open_model(model)


def test_files_changed_between_the_check_and_the_load_are_caught(tiny_mlflow_model, tmp_path):
    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    content = open_model(model)
    (model / "model" / "config.json").write_text("{}")  # swapped after hashing, before use
    with pytest.raises(ModelFilesError, match=r"changed while loading: model/config\.json: sha256"):
        content.recheck()

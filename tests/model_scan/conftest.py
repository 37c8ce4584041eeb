"""Writable copies of the good model folders (the session's builds are shared and read-only)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def mlflow_copy(tiny_mlflow_model, tmp_path) -> Path:
    """The tiny model's MLflow build."""
    return Path(shutil.copytree(tiny_mlflow_model, tmp_path / "mlflow_model_folder"))


@pytest.fixture
def snapshot_copy(tiny_model_dir, tmp_path) -> Path:
    """The tiny model's Hugging Face folder (what build reads)."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "snapshot"))

"""Session-wide fixtures: the tiny trained model and its MLflow build are made once per run."""

from __future__ import annotations

import os

# Tests never touch the network: hub look-ups fail fast and quietly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from distilgpt2_asset.spec import load_spec  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def asset_spec():
    return load_spec(REPO_ROOT / "spec.yaml")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A Hugging Face folder: GPT-2, 2 layers, trained on data/tiny-corpus.txt (decisive greedy output)."""
    from distilgpt2_asset.testing_models import make_testing_model

    return make_testing_model("tiny", tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_mlflow_model(asset_spec, tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model built into an MLflow folder with its sha256 manifest (read-only for tests)."""
    from distilgpt2_asset.build import build_mlflow_model

    return build_mlflow_model(asset_spec, str(tiny_model_dir), None, tmp_path_factory.mktemp("mlflow") / "tiny-mlflow")


@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    """A fresh DISTILGPT2_ASSET_HOME (registry, builds, caches) and no inherited MLflow URI."""
    home = tmp_path / "home"
    monkeypatch.setenv("DISTILGPT2_ASSET_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home

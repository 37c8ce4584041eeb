"""Session-wide fixtures: the tiny trained model and its MLflow build are made once per run.

The suite never writes into the user's own homes (~/.distilgpt2-asset, or the DISTILGPT2_ASSET_HOME
the tests were started with): the session gets a home of its own, each test that needs one a fresh
one (fixture isolated_home), and the run fails if a user's home changed anyway (a path that
ignores DISTILGPT2_ASSET_HOME).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

USER_HOMES = sorted(
    {
        Path.home() / ".distilgpt2-asset",
        Path(os.environ.get("DISTILGPT2_ASSET_HOME") or Path.home() / ".distilgpt2-asset"),
    }
)
SESSION_HOME = Path(tempfile.mkdtemp(prefix="distilgpt2-asset-tests-")).resolve()
os.environ["DISTILGPT2_ASSET_HOME"] = str(SESSION_HOME)
os.environ.pop("MLFLOW_TRACKING_URI", None)  # the user's MLflow server is theirs too
# Tests never touch the network: hub look-ups fail fast and quietly.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

import pytest  # noqa: E402

from distilgpt2_asset.spec import load_spec  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def tree_state(root: Path) -> list[tuple[str, int, int]]:
    """Every entry under root (root included) with its size and modification time; [] if root is absent."""
    if not root.exists():
        return []
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in [root, *root.rglob("*")]
    )


USER_HOMES_AT_START = {home: tree_state(home) for home in USER_HOMES}


def pytest_sessionfinish(session):
    """Fail the run if a user's home changed while the tests ran."""
    shutil.rmtree(SESSION_HOME, ignore_errors=True)
    for home, state in USER_HOMES_AT_START.items():
        if tree_state(home) != state:
            print(f"\nFAILED: the tests changed {home}, the user's own; give them a DISTILGPT2_ASSET_HOME of their own")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def asset_spec():
    return load_spec(REPO_ROOT / "spec.yaml")


@pytest.fixture
def asset_copy(tmp_path) -> Path:
    """spec.yaml with its companion files (the asset's release set and the SKU catalog), to break."""
    root = tmp_path / "asset"
    root.mkdir()
    for name in ("spec.yaml", "asset.yaml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "model", root / "model")
    return root


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


@pytest.fixture(scope="session")
def pinned_mlflow_model(asset_spec, tiny_mlflow_model, tmp_path_factory) -> Path:
    """The tiny build recorded as spec.yaml's hub id at its pinned SHA: what `distilgpt2-asset build`
    makes from the hub (which the tests cannot reach), for the paths that accept only that."""
    from publish_helpers import changed_copy

    pinned = {"source_model_id": asset_spec.hf_model_id, "source_revision": asset_spec.revision}
    return changed_copy(tiny_mlflow_model, tmp_path_factory.mktemp("pinned") / "pinned-mlflow", mlmodel_metadata=pinned)


@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    """A fresh DISTILGPT2_ASSET_HOME (registry, builds, caches) and no inherited MLflow URI."""
    home = tmp_path / "home"
    monkeypatch.setenv("DISTILGPT2_ASSET_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home

"""Find the MLflow folder inside a registered model and verify its sha256 manifest.

Azure mounts a registry model at AZUREML_MODEL_DIR with the MLflow folder either at the root
or under mlflow_model_folder/; a build writes the manifest, init verifies it before loading.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_NAME = "sha256-manifest.json"
MLFLOW_SUBFOLDER = "mlflow_model_folder"
_CHUNK = 1 << 20


class ModelFilesError(Exception):
    """The model folder is missing, incomplete or does not match its manifest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hashed_files(model_dir: Path) -> list[Path]:
    return sorted(
        p for p in model_dir.rglob("*") if p.is_file() and p.name != MANIFEST_NAME
    )


def compute_manifest(model_dir: Path) -> dict[str, str]:
    """sha256 of every file under model_dir except the manifest, by POSIX relative path."""
    model_dir = Path(model_dir)
    return {p.relative_to(model_dir).as_posix(): sha256_file(p) for p in _hashed_files(model_dir)}


def write_manifest(model_dir: Path) -> dict[str, str]:
    files = compute_manifest(model_dir)
    payload = {"algorithm": "sha256", "files": files}
    (Path(model_dir) / MANIFEST_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return files


def read_manifest(model_dir: Path) -> dict[str, str]:
    path = Path(model_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ModelFilesError(f"{path}: manifest missing; rebuild the model with `distilgpt2-asset build`")
    try:
        payload = json.loads(path.read_text())
        return dict(payload["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFilesError(f"{path}: not a valid manifest ({exc})") from exc


def verify_manifest(model_dir: Path) -> dict[str, str]:
    """Raise ModelFilesError naming every file that is missing, changed or not in the manifest."""
    model_dir = Path(model_dir)
    expected = read_manifest(model_dir)
    actual = compute_manifest(model_dir)
    problems = [f"{name}: missing" for name in sorted(expected.keys() - actual.keys())]
    problems += [
        f"{name}: sha256 {actual[name][:12]}… does not match the manifest's {expected[name][:12]}…"
        for name in sorted(expected.keys() & actual.keys())
        if expected[name] != actual[name]
    ]
    problems += [f"{name}: not in the manifest" for name in sorted(actual.keys() - expected.keys())]
    if problems:
        raise ModelFilesError(f"model files in {model_dir} failed verification: " + "; ".join(problems))
    return expected


def locate_mlflow_folder(model_root: Path) -> Path:
    """The folder holding MLmodel: the root itself, root/mlflow_model_folder, or one level below."""
    model_root = Path(model_root)
    candidates = [model_root, model_root / MLFLOW_SUBFOLDER]
    if model_root.is_dir():
        for child in sorted(p for p in model_root.iterdir() if p.is_dir()):
            candidates += [child, child / MLFLOW_SUBFOLDER]
    for candidate in candidates:
        if (candidate / "MLmodel").is_file():
            return candidate
    raise ModelFilesError(
        f"no MLflow model (an MLmodel file) in {model_root} or its {MLFLOW_SUBFOLDER}/ subfolder"
    )

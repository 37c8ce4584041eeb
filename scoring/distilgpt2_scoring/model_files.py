"""Find the MLflow folder inside a registered model, and know exactly what it holds.

Azure mounts a registry model at AZUREML_MODEL_DIR with the MLflow folder either at the root or
under mlflow_model_folder/. Our builds carry a sha256 manifest of every file; Microsoft's
published folder (made by mlflow.transformers.save_model) does not. Either way the server hashes
every file and serves one content digest (the sha256 of the sorted file list, the same value
`register` and `publish` record as content_sha256), which a deployment can pin. Only regular
files are accepted: a symlink or FIFO could point the server at something the digest never saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "sha256-manifest.json"
MLFLOW_SUBFOLDER = "mlflow_model_folder"
_CHUNK = 1 << 20


class ModelFilesError(Exception):
    """The model folder is missing, incomplete, unsafe or does not match what was expected."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hashed_files(model_dir: Path) -> list[Path]:
    """Every regular file under model_dir but the manifest; anything else is refused by name."""
    found = []
    for parent, folders, names in os.walk(model_dir):
        for name in folders + names:
            path = Path(parent, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
                raise ModelFilesError(f"{path} is {kind}; a model folder holds only regular files")
            if stat.S_ISREG(mode) and path != model_dir / MANIFEST_NAME:
                found.append(path)
    return sorted(found)


def compute_manifest(model_dir: Path) -> dict[str, str]:
    """sha256 of every file under model_dir except the manifest, by POSIX relative path."""
    model_dir = Path(model_dir)
    return {p.relative_to(model_dir).as_posix(): sha256_file(p) for p in _hashed_files(model_dir)}


def manifest_digest(files: dict[str, str]) -> str:
    """One digest for a whole model: sha256 of its file list (path -> sha256), sorted."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


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


def _require_same(
    folder: Path, expected: dict[str, str], actual: dict[str, str], what: str = "failed verification"
) -> None:
    """Raise ModelFilesError naming every file that is missing, changed or unexpected."""
    problems = [f"{name}: missing" for name in sorted(expected.keys() - actual.keys())]
    problems += [
        f"{name}: sha256 {actual[name][:12]}… does not match the manifest's {expected[name][:12]}…"
        for name in sorted(expected.keys() & actual.keys())
        if expected[name] != actual[name]
    ]
    problems += [f"{name}: not in the manifest" for name in sorted(actual.keys() - expected.keys())]
    if problems:
        raise ModelFilesError(f"model files in {folder} {what}: " + "; ".join(problems))


def verify_manifest(model_dir: Path) -> dict[str, str]:
    """Raise ModelFilesError naming every file that is missing, changed or not in the manifest."""
    model_dir = Path(model_dir)
    expected = read_manifest(model_dir)
    _require_same(model_dir, expected, compute_manifest(model_dir))
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
    raise ModelFilesError(f"no MLflow model (an MLmodel file) in {model_root} or its {MLFLOW_SUBFOLDER}/ subfolder")


@dataclass(frozen=True)
class ModelContent:
    """An MLflow folder and the sha256 of each of its files, as hashed when it was opened."""

    folder: Path
    files: dict[str, str]
    has_manifest: bool

    @property
    def digest(self) -> str:
        return manifest_digest(self.files)

    def recheck(self) -> None:
        """After loading: the files are still those that were hashed (no swap between check and use)."""
        _require_same(self.folder, self.files, compute_manifest(self.folder), "changed while loading")


def open_model(model_root: Path, expected_digest: str | None = None, require_manifest: bool = False) -> ModelContent:
    """Locate the MLflow folder, hash it, check it against its manifest (our builds) and against
    expected_digest (a deployment's pin); ModelFilesError names what differs. require_manifest:
    only our own builds (every command but serving a deployment's model)."""
    folder = locate_mlflow_folder(model_root)
    has_manifest = (folder / MANIFEST_NAME).is_file()
    if require_manifest and not has_manifest:
        read_manifest(folder)  # raises, saying how to make one
    content = ModelContent(folder, compute_manifest(folder), has_manifest)
    if has_manifest:
        _require_same(folder, read_manifest(folder), content.files)
    if expected_digest and expected_digest.lower() != content.digest:
        raise ModelFilesError(
            f"model content sha256 {content.digest} is not the expected {expected_digest.lower()} "
            f"(TEXTGEN_EXPECTED_CONTENT_SHA256); the deployment points at other files than were pinned"
        )
    return content

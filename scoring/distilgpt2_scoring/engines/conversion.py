"""The fast engine's int8 model files, converted from the MLflow model's own weights and cached.

Never downloaded: the converter reads model/ and components/tokenizer/ of the verified MLflow
folder. The cache entry is keyed by the model's manifest digest and the CTranslate2 version,
written to a staging folder with its own sha256 manifest and renamed into place, and verified
on every use (a damaged entry is converted again). The conversion runs in a subprocess so the
serving process never imports torch (less memory, faster start).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..model_files import MANIFEST_NAME, ModelFilesError, verify_manifest, write_manifest

QUANTIZATION = "int8"
logger = logging.getLogger(__name__)


def cache_key(mlflow_dir: Path) -> str:
    import ctranslate2

    manifest = (Path(mlflow_dir) / MANIFEST_NAME).read_bytes()
    digest = hashlib.sha256(manifest).hexdigest()[:20]
    return f"{digest}-ct2-{ctranslate2.__version__}-{QUANTIZATION}"


def _assemble_hf_folder(mlflow_dir: Path, into: Path) -> Path:
    """A Hugging Face folder (weights + tokenizer) made of links to the MLflow model's files."""
    for sub in ("model", "components/tokenizer"):
        for item in (Path(mlflow_dir) / sub).iterdir():
            (into / item.name).symlink_to(item.resolve())
    return into


def _convert(mlflow_dir: Path, output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="textgen-hf-") as scratch:
        hf_folder = _assemble_hf_folder(mlflow_dir, Path(scratch))
        command = [
            sys.executable, "-m", "ctranslate2.converters.transformers",
            "--model", str(hf_folder), "--output_dir", str(output),
            "--quantization", QUANTIZATION, "--force",
        ]  # fmt: skip
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise ModelFilesError(f"converting the model to CTranslate2 {QUANTIZATION} failed: {done.stderr.strip()[-2000:]}")


def converted_model(mlflow_dir: Path, cache_dir: Path) -> Path:
    """The cached CTranslate2 model for mlflow_dir, converting it first when missing or damaged."""
    target = Path(cache_dir) / cache_key(mlflow_dir)
    if target.is_dir():
        try:
            verify_manifest(target)
            return target
        except ModelFilesError as exc:
            logger.warning("converted model cache is damaged, converting again: %s", exc)
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s to CTranslate2 %s in %s", mlflow_dir, QUANTIZATION, target)
    try:
        _convert(mlflow_dir, staging)
        write_manifest(staging)
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError:  # another worker finished the same conversion first
            verify_manifest(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

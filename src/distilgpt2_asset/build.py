"""Hugging Face snapshot at the pinned revision -> MLflow transformers model + sha256 manifest.

Mirrors Azure's own conversion (mlflow.transformers.save_model of a text-generation pipeline,
with the published signature and metadata) and makes the output reproducible: the same
input gives the same file hashes.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable
from importlib.metadata import version as installed_version
from pathlib import Path
from urllib.parse import urlparse

import yaml

from distilgpt2_scoring.folders import staged_folder
from distilgpt2_scoring.model_files import sha256_file, write_manifest

from .errors import AssetError
from .model_scan import scan_model
from .paths import default_build_dir
from .spec import AssetSpec

# The published asset's params schema: (name, MLflow type, default).
GENERATION_PARAMS = (
    ("top_p", "double", 1.0),
    ("temperature", "double", 0.8),
    ("max_new_tokens", "long", 50),
    ("do_sample", "boolean", True),
    ("return_full_text", "boolean", True),
)
MLFLOW_INFERENCE_IMAGE = "mcr.microsoft.com/azureml/curated/mlflow-model-inference"
# What the MLflow model needs at serving time, pinned to the versions installed here.
RUNTIME_PACKAGES = ("mlflow", "torch", "transformers", "tokenizers", "safetensors")
# A fixed creation time keeps MLmodel byte-identical across builds (reproducible-builds style).
FIXED_CREATED = "2000-01-01 00:00:00.000000"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_HUB_FILES = ["*.json", "*.safetensors", "*.txt"]  # safetensors only: never pickled weights
_HUB_SUBFOLDERS = ["*/*"]  # the repository's root only (not onnx/, coreml/): the Hugging Face layout the scan accepts


def pip_requirements() -> list[str]:
    """`pkg==version` for the runtime packages, without local labels such as +cpu."""
    return [f"{pkg}=={installed_version(pkg).split('+')[0]}" for pkg in RUNTIME_PACKAGES]


def resolve_source(source: str, revision: str) -> Path:
    """A local snapshot folder, or the hub repo downloaded at the pinned commit SHA."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve()
    if not _SHA.match(revision or ""):
        raise AssetError(f"--revision must be a 40-character commit SHA, got {revision!r}; revisions are pinned")
    from huggingface_hub import constants, snapshot_download

    offline_hint = (
        "pass a local snapshot instead: distilgpt2-asset build --source DIR "
        "(DIR holds config.json, model.safetensors, vocab.json and merges.txt)"
    )
    host = urlparse(constants.ENDPOINT).hostname or ""
    if not constants.HF_HUB_OFFLINE and not _resolves(host):
        # Fail in a second rather than after the hub client's half-minute of retries.
        raise AssetError(f"cannot reach the Hugging Face hub ({host} does not resolve); {offline_hint}")
    try:
        return Path(
            snapshot_download(
                repo_id=source, revision=revision, allow_patterns=_HUB_FILES, ignore_patterns=_HUB_SUBFOLDERS
            )
        )
    except Exception as exc:  # offline, unknown repo, unknown revision: all end the same way for the user
        raise AssetError(
            f"cannot fetch {source}@{revision[:12]} from the Hugging Face hub ({type(exc).__name__}); {offline_hint}"
        ) from None


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def check_snapshot(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise AssetError(f"{folder}: no config.json; not a Hugging Face model folder")
    if not list(folder.glob("*.safetensors")):
        raise AssetError(f"{folder}: no *.safetensors weights (pickled .bin weights are refused)")


def _load_pipeline(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    try:
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise AssetError(f"{folder}: cannot load a causal LM and tokenizer: {exc}") from None
    return pipeline("text-generation", model=model, tokenizer=tokenizer)


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string")]),
        outputs=Schema([ColSpec("string")]),
        params=ParamSchema([ParamSpec(name, kind, default) for name, kind, default in GENERATION_PARAMS]),
    )


def model_card(spec: AssetSpec, description: str | None = None):
    from huggingface_hub import ModelCard

    header = yaml.safe_dump({"license": spec.tags.get("license"), "language": spec.properties.get("languages")})
    return ModelCard(f"---\n{header}---\n{description or spec.description}")


def _metadata(spec: AssetSpec, source: str, revision: str) -> dict:
    return {
        "base_model_name": spec.name,
        "base_model_task": spec.task,
        "azureml.base_image": MLFLOW_INFERENCE_IMAGE,
        "source_model_id": source,
        "source_revision": revision,
        "is_finetuned_model": False,
    }


def normalise_mlmodel(folder: Path, source: str) -> None:
    """Replace what MLflow makes up per save (uuid, clock, local path) with content-derived values."""
    mlmodel = folder / "MLmodel"
    data = yaml.safe_load(mlmodel.read_text())
    weights = sorted(folder.glob("model/*.safetensors"))
    content_id = "".join(sha256_file(w) for w in weights)
    data["model_uuid"] = uuid.uuid5(uuid.NAMESPACE_URL, content_id).hex
    data["utc_time_created"] = FIXED_CREATED
    data["flavors"]["transformers"]["source_model_name"] = source
    mlmodel.write_text(yaml.safe_dump(data, sort_keys=True))


def save_mlflow_model(
    pipe,
    output: Path,
    *,
    task: str,
    signature,
    metadata: dict,
    model_card,
    source: str,
    add_files: Callable[[Path], None] | None = None,
) -> Path:
    """Save a transformers pipeline as an MLflow model at output, the way every model here is saved.

    Staged then renamed (nothing half-written), pinned pip requirements, normalised MLmodel and a
    sha256 manifest; add_files(staging) may add files (metrics, plots) before the manifest is written.
    The staged folder is scanned (model_scan) and removed instead of renamed on any finding.
    """
    import mlflow.transformers

    output = Path(output).resolve()
    print(f"saving MLflow model to {output}", flush=True)
    with staged_folder(output, make=False) as staging:  # save_model makes its folder itself
        mlflow.transformers.save_model(
            transformers_model=pipe,
            path=str(staging),
            task=task,
            signature=signature,
            metadata=metadata,
            pip_requirements=pip_requirements(),
            model_card=model_card,
        )
        if add_files is not None:
            add_files(staging)
        normalise_mlmodel(staging, source)
        write_manifest(staging)
        scan_model(staging).require_clean("finish the build")
    return output


def write_engine_files(mlflow_dir: Path) -> None:
    """The int8 OpenVINO model the CPU engine serves, made from the folder's own weights, so that a
    new instance loads it instead of converting at start-up (the sha256 manifest covers it)."""
    from distilgpt2_scoring.engines.cache import convert_in_subprocess
    from distilgpt2_scoring.engines.openvino import BUILT_FOLDER

    print("exporting the int8 OpenVINO model", flush=True)
    convert_in_subprocess("openvino", [Path(mlflow_dir) / "model", Path(mlflow_dir) / BUILT_FOLDER])


def default_output(spec: AssetSpec) -> Path:
    """Where `distilgpt2-asset build` puts spec.yaml's version (and serve, register and publish look)."""
    return default_build_dir() / f"{spec.name}-{spec.version}"


def build_mlflow_model(spec: AssetSpec, source: str | None, revision: str | None, output: Path) -> Path:
    """Build the MLflow model folder at output (replaced atomically); return it."""
    source = source or spec.hf_model_id
    from_hub = not Path(source).expanduser().is_dir()
    revision = revision or (spec.revision if from_hub else "local")
    folder = resolve_source(source, revision)
    check_snapshot(folder)
    scan_model(folder).require_clean("build from it")  # before anything in it is loaded
    print(f"loading {folder}", flush=True)
    pipe = _load_pipeline(folder)
    return save_mlflow_model(
        pipe,
        output,
        task=spec.task,
        signature=_signature(),
        metadata=_metadata(spec, source, revision),
        model_card=model_card(spec),
        source=source,
        add_files=write_engine_files,
    )

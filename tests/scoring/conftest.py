"""Scoring fixtures: one engine cache and one service per engine for the whole session."""

from __future__ import annotations

import pytest

from distilgpt2_scoring.settings import ServingSettings
from distilgpt2_scoring.tasks import load_service


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory):
    """TEXTGEN_CACHE_DIR shared by every test: a conversion the tiny model needs is made once."""
    return tmp_path_factory.mktemp("engine-cache")


def _service(tiny_mlflow_model, engine_cache, engine: str):
    service = load_service(
        tiny_mlflow_model, ServingSettings(engine=engine, device="cpu", cache_dir=engine_cache, max_prompts=16)
    )
    yield service
    service.close()


@pytest.fixture(scope="session")
def openvino_service(tiny_mlflow_model, engine_cache):
    """The CPU default: OpenVINO GenAI continuous batching on the model's built-in int8 model."""
    yield from _service(tiny_mlflow_model, engine_cache, "openvino")


@pytest.fixture(scope="session")
def ctranslate2_service(tiny_mlflow_model, engine_cache):
    """The CUDA default, here on the CPU (int8)."""
    yield from _service(tiny_mlflow_model, engine_cache, "ctranslate2")


@pytest.fixture(scope="session")
def reference_service(tiny_mlflow_model, engine_cache):
    yield from _service(tiny_mlflow_model, engine_cache, "transformers")


def _published_folder(tiny_model_dir, root, weights: str):
    """A registered model laid out like Microsoft's published distilgpt2: Azure's own conversion
    (mlflow.transformers.save_model of a text-generation pipeline, the card's signature and
    metadata) under mlflow_model_folder/, with no sha256 manifest and no engine files. weights:
    "safetensors" as save_pretrained writes today, or "bin", the PyTorch file it wrote before."""
    import mlflow.transformers
    import torch

    from distilgpt2_asset.build import _load_pipeline, _signature

    pipeline = _load_pipeline(tiny_model_dir)
    folder = root / "mlflow_model_folder"
    metadata = {
        "base_model_name": "distilgpt2",
        "base_model_task": "text-generation",
        "azureml.base_image": "mcr.microsoft.com/azureml/curated/mlflow-model-inference",
    }
    mlflow.transformers.save_model(
        transformers_model=pipeline,
        path=str(folder),
        signature=_signature(),
        metadata=metadata,
        pip_requirements=["mlflow", "transformers", "torch"],
    )
    if weights == "bin":
        (folder / "model" / "model.safetensors").unlink()
        torch.save(pipeline.model.state_dict(), folder / "model" / "pytorch_model.bin")
    return root


@pytest.fixture(scope="session", params=["safetensors", "bin"])
def published_model(request, tiny_model_dir, tmp_path_factory):
    return _published_folder(tiny_model_dir, tmp_path_factory.mktemp(f"published-{request.param}"), request.param)

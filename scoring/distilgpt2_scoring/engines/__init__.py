"""Generation engines behind one interface (scheduler.Engine); TEXTGEN_ENGINE names one, or `auto`.

- openvino: OpenVINO GenAI continuous batching, int8 (the CPU default);
- ctranslate2: CTranslate2 int8 / int8_float16, static batches (the CUDA default: OpenVINO does
  not run on NVIDIA GPUs);
- transformers: the model's own generate(), exact (the reference).
Which one runs, and how (precision, threads, KV cache), is decided once in hardware.decide().
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from ..hardware import EngineName, decide
from ..model_files import ModelContent, ModelFilesError
from ..scheduler import Engine
from ..settings import ServingSettings
from .cache import cached_conversion

logger = logging.getLogger(__name__)
ENGINES: dict[EngineName, str] = {
    "openvino": "distilgpt2_scoring.engines.openvino:OpenVINOEngine",
    "ctranslate2": "distilgpt2_scoring.engines.ctranslate2:CTranslate2Engine",
    "transformers": "distilgpt2_scoring.engines.transformers:TransformersEngine",
}


def weights_folder(content: ModelContent, cache_dir: Path) -> Path:
    """A Hugging Face folder with config.json and model.safetensors for this model: its own model/,
    or, when it carries a PyTorch pytorch_model.bin instead, that file converted once (safely)."""
    model = content.folder / "model"
    if (model / "model.safetensors").is_file():
        return model
    if (model / "pytorch_model.bin").is_file():
        return cached_conversion(cache_dir, f"{content.digest[:32]}-safetensors", "safetensors", model)
    raise ModelFilesError(f"{model}: no model.safetensors (or pytorch_model.bin) weights")


def engine_class(name: EngineName) -> type[Engine]:
    """The engine class for a TEXTGEN_ENGINE value (its module imports its library only when loading)."""
    module_name, class_name = ENGINES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_engine(content: ModelContent, settings: ServingSettings) -> Engine:
    config = decide(settings)
    logger.info("%s", config.describe())
    return engine_class(config.engine).load(content, weights_folder(content, settings.cache_dir), settings, config)

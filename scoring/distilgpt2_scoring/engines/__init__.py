"""Generation engines behind one interface (engines.base.Engine); the setting TEXTGEN_ENGINE picks one.

- transformers: the reference, exact: the model's own generate(), one prompt at a time.
- ctranslate2: the fast one: int8 weights including the LM head, KV cache, prompt in one pass,
  batches of prompts decoded together.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import ServingSettings
from .base import Engine


def make_engine(mlflow_dir: Path, settings: ServingSettings) -> Engine:
    if settings.engine == "ctranslate2":
        from .fast import CTranslate2Engine

        return CTranslate2Engine.load(mlflow_dir, settings)
    from .reference import TransformersEngine

    return TransformersEngine.load(mlflow_dir, settings)

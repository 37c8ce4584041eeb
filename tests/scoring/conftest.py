"""Scoring fixtures: one int8 conversion cache and one service per engine for the whole session."""

from __future__ import annotations

import pytest

from distilgpt2_scoring.service import TextGenerationService
from distilgpt2_scoring.settings import ServingSettings

@pytest.fixture(scope="session")
def textgen_cache(tmp_path_factory):
    """TEXTGEN_CACHE_DIR shared by every test: the tiny model is converted to int8 once."""
    return tmp_path_factory.mktemp("textgen-cache")


def _service(tiny_mlflow_model, textgen_cache, engine: str):
    service = TextGenerationService.load(
        tiny_mlflow_model, ServingSettings(engine=engine, device="cpu", cache_dir=textgen_cache, max_prompts=16)
    )
    yield service
    service.close()


@pytest.fixture(scope="session")
def fast_service(tiny_mlflow_model, textgen_cache):
    yield from _service(tiny_mlflow_model, textgen_cache, "ctranslate2")


@pytest.fixture(scope="session")
def reference_service(tiny_mlflow_model, textgen_cache):
    yield from _service(tiny_mlflow_model, textgen_cache, "transformers")

"""Serving settings: environment variables with the TEXTGEN_ prefix, read once at init.

The deployment YAML sets the same variables (environment_variables); `distilgpt2-asset serve`
sets them for the local server. Each field's docstring is its documentation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TEXTGEN_"


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, use_attribute_docstrings=True, extra="ignore")

    engine: Literal["ctranslate2", "transformers"] = "ctranslate2"
    """Generation engine: `ctranslate2` (int8, KV cache, batched; the deployment default) or
    `transformers` (the exact reference: the model's own generate())."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the engine runs: `auto` picks CUDA when a GPU is visible, else CPU. The only place a
    device is chosen (CPU: int8 / float32; CUDA: int8_float16 / float16)."""

    threads: int = Field(0, ge=0)
    """Compute threads of the engine; 0 means one per CPU core."""

    max_batch_size: int = Field(16, ge=1)
    """Most prompts decoded together in one batch."""

    batch_wait_ms: float = Field(100.0, ge=0)
    """After a batch, how long the worker waits for its clients to send their next requests, so
    they share one batch instead of a lone early-comer running first; capped at 5% of that
    batch's duration. An idle server starts a lone request at once."""

    max_queue: int = Field(128, ge=1)
    """Most prompts waiting for a batch; when full, new requests get 429 with Retry-After at once."""

    max_prompts: int = Field(32, ge=1)
    """Most prompts in one request (the length of input_data)."""

    max_new_tokens: int = Field(1024, ge=1)
    """Upper limit a request may ask for in params.max_new_tokens."""

    max_body_bytes: int = Field(2_000_000, ge=1)
    """Largest request body accepted; larger gets 413 (2 MB, as text-generation-inference)."""

    cache_dir: Path = Path.home() / ".cache" / "textgen"
    """Where the fast engine's int8 conversion of the model is cached, keyed by the model's manifest digest."""

    @model_validator(mode="after")
    def _prompts_fit_queue(self) -> "ServingSettings":
        if self.max_prompts > self.max_queue:
            raise ValueError(f"max_prompts ({self.max_prompts}) cannot exceed max_queue ({self.max_queue})")
        return self

    @property
    def thread_count(self) -> int:
        return self.threads or os.cpu_count() or 1

    def resolved_device(self) -> Literal["cpu", "cuda"]:
        """`auto` -> cuda when the chosen engine can see a GPU, else cpu."""
        if self.device != "auto":
            return self.device
        if self.engine == "ctranslate2":
            import ctranslate2

            return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

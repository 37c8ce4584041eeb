"""Serving settings: environment variables with the TEXTGEN_ prefix, read once at init.

The deployment YAML sets the same variables (environment_variables); `distilgpt2-asset serve`
sets them for the local server. Each field's docstring is its documentation. The defaults fit
the smallest SKU of the inference allow-list (2 vCPUs, 8 GB).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .hardware import EngineName, Precision, available_cpus

ENV_PREFIX = "TEXTGEN_"
logger = logging.getLogger(__name__)
# The deadline's answer must reach the client before the endpoint's front end gives up on its own
# clock, which started before our server saw the request.
DEADLINE_MARGIN_MS = 500


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, use_attribute_docstrings=True, extra="ignore")

    engine: Literal["auto"] | EngineName = "auto"
    """Generation engine: `auto` (on a CPU the fastest measured for its class, see hardware.py:
    OpenVINO GenAI continuous batching on every class so far; CTranslate2 on a CUDA GPU),
    `openvino`, `ctranslate2`, or `transformers` (the exact reference)."""

    precision: Literal["auto"] | Precision = "auto"
    """The OpenVINO engine's activation precision (INFERENCE_PRECISION_HINT; the weights stay int8):
    `auto` is the CPU class's measured choice (f32 so far), `f32`, `bf16` or `f16`."""

    quantization_group: Literal["auto"] | Annotated[int, Field(ge=0)] = "auto"
    """How many of the OpenVINO engine's f32 activations share a scale when they are quantized to
    int8 for the int8 weights' matmuls (DYNAMIC_QUANTIZATION_GROUP_SIZE): `auto` is the CPU class's
    measured choice (128 on Intel AMX, else the plugin's default of 32); 0 turns it off."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the engine runs: `auto` picks CUDA when a GPU is visible, else the CPU."""

    threads: int = Field(0, ge=0)
    """Compute threads of the engine; 0 means one per CPU this process may use."""

    max_batch_size: int = Field(16, ge=1)
    """Most sequences generated at once (in flight in the engine's batch)."""

    kv_cache_gb: int = Field(1, ge=1)
    """Upper bound of the OpenVINO engine's paged KV cache, in whole GB (blocks are taken as
    sequences grow: 16 full 1024-token distilgpt2 sequences need about 0.3 GB)."""

    max_queue: int = Field(128, ge=1)
    """Most sequences waiting for a place in the batch; past it, new requests get 429 with
    Retry-After at once."""

    max_prompts: int = Field(32, ge=1)
    """Most prompts in one request (the length of input_data, or the OpenAI prompt list x n)."""

    max_new_tokens: int = Field(1024, ge=1)
    """Upper limit a request may ask for in params.max_new_tokens (max_tokens for OpenAI)."""

    max_body_bytes: int = Field(2_000_000, ge=1)
    """Largest request body accepted; larger gets 413 (2 MB, as text-generation-inference)."""

    request_timeout_ms: int = Field(90_000, ge=1000)
    """Every request's deadline: equal to the deployment's request_settings.request_timeout_ms
    (`distilgpt2-asset deploy` writes both from one value). A request still queued at its deadline
    is never generated, one running is dropped at its next token; either answers 503 with
    Retry-After, 500 ms before the deadline, so that no late 200 follows the endpoint's own 408."""

    expected_content_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    """The model content digest the deployment expects (the content_sha256 recorded by `register`
    and `publish`); init refuses other content, naming both digests. Unset: init logs the digest
    it serves, for pinning next time."""

    cache_dir: Path = Path.home() / ".cache" / "distilgpt2-scoring"
    """Private folder (0700, this user's) for engine files made at start-up from the model (the
    OpenVINO model of folders without one, CTranslate2's conversion), keyed by the content digest."""

    # Observability (distilgpt2_scoring/observability/; README "Operate")
    request_log: bool = True
    """One JSON line per request (`"textgen": "request"`) and per engine gauge sample (`"textgen":
    "engine"`) in the server's log (on Azure: Log Analytics' AmlOnlineEndpointConsoleLog)."""

    log_text: bool = False
    """Put each prompt and answer text in the request's log line (off: figures only)."""

    gauge_interval_s: float = Field(10.0, gt=0)
    """Seconds between two samples of the engine gauges (running, waiting, KV cache, tokens/s, refusals)."""

    metrics_port: int = Field(0, ge=0, le=65535)
    """Port of the Prometheus /metrics endpoint; 0: none (`distilgpt2-asset serve --metrics-port` sets it)."""

    metrics_host: str = "127.0.0.1"
    """Address the /metrics endpoint binds: this machine only, unless a scraper elsewhere must reach it
    (0.0.0.0 on a Kubernetes online endpoint scraped by Azure Monitor's managed Prometheus)."""

    collect_data: bool = False
    """Send each request and answer to Azure ML model monitoring (the deployment's data_collector,
    `deploy --collect-data`): prompts and answers leave the container, so off unless asked for."""

    collect_data_rate: float = Field(1.0, gt=0, le=1)
    """The share of answered requests sent to model monitoring (`deploy --collect-data 0.1`), drawn
    once per request, so that a request's input and its output are both sent or neither is."""

    @model_validator(mode="after")
    def _prompts_fit_queue(self) -> ServingSettings:
        if self.max_prompts > self.max_queue:
            raise ValueError(f"max_prompts ({self.max_prompts}) cannot exceed max_queue ({self.max_queue})")
        return self

    @property
    def thread_count(self) -> int:
        return self.threads or available_cpus()

    @property
    def max_in_flight(self) -> int:
        return self.max_batch_size + self.max_queue

    @property
    def deadline_s(self) -> float:
        return (self.request_timeout_ms - DEADLINE_MARGIN_MS) / 1000

    def resolved_device(self) -> Literal["cpu", "cuda"]:
        """`auto` -> cuda when a GPU is visible, else cpu. The one place a device is chosen."""
        if self.device != "auto":
            return self.device
        import ctranslate2  # lighter than torch, and sees the same CUDA devices

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

    def torch_device(self) -> Literal["cpu", "cuda"]:
        """The device of the torch models (the transformers engine, the classifier): the resolved
        device, except that the inference environment's CPU build of torch keeps them on the CPU of
        a GPU SKU, where CTranslate2 has the GPU."""
        import torch

        device = self.resolved_device()
        if device == "cuda" and not torch.cuda.is_available():
            logger.warning("this torch build has no CUDA: the transformers engine and the classifier run on the CPU")
            return "cpu"
        return device

    def engine_on(self, device: Literal["cpu", "cuda"], cpu_choice: EngineName = "openvino") -> EngineName:
        """`auto` -> cpu_choice (the CPU class's, from hardware.decide) on a CPU, ctranslate2 on CUDA
        (`deploy` asks it for the instance type's device)."""
        if self.engine == "auto":
            return "ctranslate2" if device == "cuda" else cpu_choice
        if self.engine == "openvino" and device == "cuda":
            raise ValueError("TEXTGEN_ENGINE=openvino runs on CPUs only; on a CUDA GPU use ctranslate2 or transformers")
        return self.engine

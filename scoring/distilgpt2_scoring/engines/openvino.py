"""The CPU engine: OpenVINO GenAI's ContinuousBatchingPipeline over the int8 model (paged KV cache).

Iteration-level scheduling: every step() advances each running sequence by one token, a new
sequence joins at the next step and a finished one leaves at once, so short requests never wait
for long ones. Each sequence carries its own GenerationConfig (greedy or sampling, temperature,
top_p, top_k, repetition_penalty) and its own random stream (rng_seed), so a seeded request gives
the same text whatever runs beside it. The pipeline gets token ids and gives token ids: our GPT-2
tokenizer is the only one (no tokenizer model is loaded here).

The model comes from the MLflow folder (engines/openvino-int8/, written by `distilgpt2-asset
build` and covered by its manifest: a start is a file load) or, for folders without it
(Microsoft's published one, older builds), from the engine cache, converted once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

from ..hardware import EngineConfig, EngineName
from ..model_files import ModelContent
from ..params import GenerationParams
from ..scheduler import Batching, Engine, EngineEvents, Occupancy
from ..sequences import Sequence
from ..settings import ServingSettings
from .cache import cached_conversion
from .openvino_export import EXPORT_RECORD, MODEL_XML, WEIGHT_FORMAT

BUILT_FOLDER = "engines/openvino-int8"  # inside the MLflow folder
logger = logging.getLogger(__name__)


def openvino_model(content: ModelContent, weights: Path, cache_dir: Path) -> Path:
    """The folder holding the int8 OpenVINO model of this content: built in, else converted once."""
    import openvino

    built = content.folder / BUILT_FOLDER
    if (built / MODEL_XML).is_file() and f"{BUILT_FOLDER}/{MODEL_XML}" in content.files:
        record = json.loads((built / EXPORT_RECORD).read_text())
        if record.get("format") == WEIGHT_FORMAT:
            return built
    key = f"{content.digest[:32]}-openvino-{openvino.__version__.split('-')[0]}-{WEIGHT_FORMAT}"
    return cached_conversion(cache_dir, key, "openvino", weights)


def continuous_batching_pipeline(folder: Path, config: EngineConfig):
    """The ContinuousBatchingPipeline as the server runs it; bench's raw figures and bulk generation
    build theirs here too, so the raw engine is measured as it is served."""
    import openvino_genai

    scheduler = openvino_genai.SchedulerConfig()
    scheduler.max_num_seqs = config.max_batch_size
    scheduler.cache_size = config.kv_cache_gb  # an upper bound; blocks are taken as sequences grow
    scheduler.dynamic_split_fuse = True  # long prompts are fed in chunks between decode steps
    return openvino_genai.ContinuousBatchingPipeline(str(folder), scheduler, "CPU", config.openvino_properties)


def generation_config(params: GenerationParams, seed: int | None, vocab_size: int, eos_token_id: int):
    """One sequence's GenerationConfig, as the server asks for it (bench's raw figures use it too)."""
    import openvino_genai

    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = params.max_new_tokens
    config.eos_token_id = eos_token_id
    config.repetition_penalty = params.repetition_penalty
    config.do_sample = not params.greedy
    if not params.greedy:
        config.temperature = params.temperature
        config.top_p = params.top_p
        config.top_k = min(params.top_k, vocab_size)  # k beyond the vocabulary: all of it
        config.rng_seed = seed
    return config


class OpenVINOEngine:
    name: ClassVar[EngineName] = "openvino"
    batching: ClassVar[Batching] = "continuous"  # sequences join and leave the running batch at every step
    seeds_every_sequence: ClassVar[bool] = (
        True  # rng_seed per request: an unseeded one gets a drawn seed, reported back
    )

    def __init__(self, pipeline, vocab_size: int, eos_token_id: int):
        self.pipeline = pipeline
        self.vocab_size = vocab_size
        self.eos_token_id = eos_token_id
        self._handles: dict[int, tuple[Sequence, Any]] = {}  # id -> (sequence, openvino_genai's GenerationHandle)

    @classmethod
    def load(
        cls, content: ModelContent, weights: Path, settings: ServingSettings, config: EngineConfig
    ) -> OpenVINOEngine:
        folder = openvino_model(content, weights, settings.cache_dir)
        pipeline = continuous_batching_pipeline(folder, config)
        logger.info("OpenVINO GenAI continuous batching from %s", folder)
        model_config = json.loads((weights / "config.json").read_text())
        return cls(pipeline, int(model_config["vocab_size"]), int(model_config["eos_token_id"]))

    @property
    def busy(self) -> bool:
        return bool(self._handles)

    def add(self, sequence: Sequence) -> None:
        import numpy
        import openvino

        ids = openvino.Tensor(numpy.array([sequence.prompt_ids], dtype=numpy.int64))
        config = generation_config(sequence.params, sequence.seed, self.vocab_size, self.eos_token_id)
        self._handles[sequence.id] = (sequence, self.pipeline.add_request(sequence.id, ids, config))

    def remove(self, sequence: Sequence) -> None:
        import openvino_genai

        entry = self._handles.pop(sequence.id, None)
        if entry is not None and entry[1].get_status() == openvino_genai.GenerationStatus.RUNNING:
            entry[1].cancel()  # leaves the batch at the next step, its KV blocks freed

    def step(self, events: EngineEvents) -> None:
        from openvino_genai import GenerationStatus

        self.pipeline.step()
        for sequence, handle in list(self._handles.values()):
            status = handle.get_status()
            if status == GenerationStatus.IGNORED:  # the pipeline could not schedule it
                del self._handles[sequence.id]
                events.on_failed(sequence)
                continue
            new = list(handle.read()[0].generated_ids) if handle.can_read() else []
            engine_done = status != GenerationStatus.RUNNING
            if (new or engine_done) and events.on_tokens(sequence, new, engine_done) and not engine_done:
                handle.stop()
            if engine_done or sequence.done:
                del self._handles[sequence.id]

    def occupancy(self) -> Occupancy:
        if not self._handles:  # nothing left to step: its last step's metrics would name requests since gone
            return Occupancy(0, 0, 0.0)
        metrics = self.pipeline.get_metrics()  # of its last step
        running = metrics.scheduled_requests
        return Occupancy(running, max(metrics.requests - running, 0), metrics.cache_usage / 100)


# The scheduler drives engines through its Engine Protocol: this has mypy check that OpenVINOEngine is one.
_ENGINE: type[Engine] = OpenVINOEngine

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
import multiprocessing
import os
import subprocess
import sys
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import ClassVar

from ..errors import EngineFailed
from ..hardware import EngineConfig, EngineName
from ..model_files import ModelContent
from ..params import GenerationParams
from ..scheduler import Batching, Engine, EngineEvents, EngineLost, Occupancy
from ..sequences import Sequence
from ..settings import ServingSettings
from .cache import cached_conversion
from .openvino_export import EXPORT_RECORD, MODEL_XML, WEIGHT_FORMAT

BUILT_FOLDER = "engines/openvino-int8"  # inside the MLflow folder
CLOSE_TIMEOUT_S = 10  # a worker mid-step ends after it; one that does not is killed
logger = logging.getLogger(__name__)


def openvino_model(content: ModelContent, weights: Path, cache_dir: Path) -> Path:
    """The folder holding the int8 OpenVINO model of this content: built in, else converted once.
    (OpenVINO's version is read from its metadata: the server's process never loads the library.)"""
    from importlib.metadata import version

    built = content.folder / BUILT_FOLDER
    if (built / MODEL_XML).is_file() and f"{BUILT_FOLDER}/{MODEL_XML}" in content.files:
        record = json.loads((built / EXPORT_RECORD).read_text())
        if record.get("format") == WEIGHT_FORMAT:
            return built
    key = f"{content.digest[:32]}-openvino-{version('openvino')}-{WEIGHT_FORMAT}"
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
    """The server's side of the pipeline's own process (openvino_worker.py): sequences go to it as
    commands, and each step() takes the reports of every step it ran since the last one."""

    name: ClassVar[EngineName] = "openvino"
    batching: ClassVar[Batching] = "continuous"  # sequences join and leave the running batch at every step
    seeds_every_sequence: ClassVar[bool] = (
        True  # rng_seed per request: an unseeded one gets a drawn seed, reported back
    )

    def __init__(self, process: subprocess.Popen, connection: Connection):
        self.process = process
        self.connection = connection
        self._sequences: dict[int, Sequence] = {}  # sent to the worker, not yet reported done
        self._occupancy = Occupancy(0, 0, 0.0)
        self._lost = False

    @classmethod
    def load(
        cls, content: ModelContent, weights: Path, settings: ServingSettings, config: EngineConfig
    ) -> OpenVINOEngine:
        folder = openvino_model(content, weights, settings.cache_dir)
        model_config = json.loads((weights / "config.json").read_text())
        engine = cls.start(folder, config, int(model_config["vocab_size"]), int(model_config["eos_token_id"]))
        logger.info("OpenVINO GenAI continuous batching from %s, in process %d", folder, engine.process.pid)
        return engine

    @classmethod
    def start(cls, folder: Path, config: EngineConfig, vocab_size: int, eos_token_id: int) -> OpenVINOEngine:
        """The worker process, its pipeline built (RuntimeError with the worker's reason if it cannot be)."""
        ours, theirs = multiprocessing.Pipe()
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding distilgpt2_scoring
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        process = subprocess.Popen(
            [sys.executable, "-m", f"{__package__}.openvino_worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            env=dict(os.environ, PYTHONPATH=path),
        )
        theirs.close()
        engine = cls(process, ours)
        ours.send(("start", folder, config, vocab_size, eos_token_id))
        answer = engine._receive()
        if answer[0] != "ready":
            engine.close()
            raise RuntimeError(f"the OpenVINO pipeline could not be built:\n{answer[1]}")
        return engine

    @property
    def busy(self) -> bool:
        return bool(self._sequences)

    def add(self, sequence: Sequence) -> None:
        self._sequences[sequence.id] = sequence
        self._send(("add", sequence.id, sequence.prompt_ids, sequence.params, sequence.seed, sequence.watched))

    def remove(self, sequence: Sequence) -> None:
        if self._sequences.pop(sequence.id, None) is not None:
            self._send(("remove", sequence.id))

    def step(self, events: EngineEvents) -> None:
        """Every report waiting, after sleeping (the GIL free) until the worker sends one or a sequence
        arrives to join. A sequence that on_tokens ends leaves through remove(), which the scheduler
        calls after a step."""
        if self._lost:
            raise self._gone()
        if self.connection not in wait([self.connection, events.arrivals]):
            return  # sequences wait to join: they are sent before the worker's next step
        messages = [self._receive()]
        while self.connection.poll():
            messages.append(self._receive())
        for message in messages:
            if message[0] == "failed":  # the worker dropped every sequence it held
                raise EngineFailed(f"the OpenVINO pipeline failed a step:\n{message[1]}")
            _, reports, occupancy = message
            self._occupancy = Occupancy(*occupancy)
            for sequence_id, new, made_at, state in reports:
                sequence = self._sequences.get(sequence_id)
                if sequence is None:  # removed after the worker made this report
                    continue
                if state != "running":
                    del self._sequences[sequence_id]
                if state == "ignored":  # the pipeline could not schedule it
                    events.on_failed(sequence)
                else:
                    events.on_tokens(sequence, new, state == "done", made_at)

    def occupancy(self) -> Occupancy:
        # With nothing held, the last step's figures would name requests since gone.
        return self._occupancy if self._sequences else Occupancy(0, 0, 0.0)

    def close(self) -> None:
        """The worker ends when its pipe closes (at its next step, or at once when idle)."""
        self.connection.close()
        try:
            self.process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _send(self, message: tuple) -> None:
        """A worker found gone here is reported by the next step(): the one place the scheduler
        handles a lost engine (a sequence it was joining is then among those it ends)."""
        if self._lost:
            return
        try:
            self.connection.send(message)
        except OSError:
            self._lost = True

    def _receive(self) -> tuple:
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            raise self._gone() from None

    def _gone(self) -> EngineLost:
        self._lost = True
        return EngineLost(f"the OpenVINO worker process ended (exit code {self.process.wait()})")


# The scheduler drives engines through its Engine Protocol: this has mypy check that OpenVINOEngine is one.
_ENGINE: type[Engine] = OpenVINOEngine

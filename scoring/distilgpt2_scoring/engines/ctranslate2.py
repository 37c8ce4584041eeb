"""The CUDA engine: CTranslate2 with int8 weights (int8_float16 on a GPU; int8 on a CPU), KV cache.

OpenVINO does not run on NVIDIA GPUs, so CUDA SKUs serve with CTranslate2. Its batches are
static: a step is one generate_batch call over the waiting sequences (up to max_batch_size), and
sequences that arrive meanwhile join the next one. Tokens still leave as they are made (the
per-token callback), and a sequence the scheduler stops leaves its batch at its next token.
CTranslate2 takes one sampling setting per call, so a batch runs as one call per setting.
Its random generator is seeded per thread, once: a seeded sampling request could only be
reproduced by loading a new generator, so seeded requests go to the transformers engine
(loaded once, on first use; on the CPU with the environment's CPU build of torch), whose
per-request seed is exact.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from ..hardware import EngineConfig, EngineName
from ..model_files import ModelContent
from ..scheduler import Batching, Engine, EngineEvents
from ..sequences import Sequence
from ..settings import ServingSettings
from .cache import cached_conversion

QUANTIZATION = "int8"
COMPUTE_TYPES = {"cpu": "int8", "cuda": "int8_float16"}
CUBLAS_LIBRARIES = ("libcublasLt.so.12", "libcublas.so.12")  # the second needs the first


def load_cublas() -> None:
    """CTranslate2 links the rest of CUDA in but opens cuBLAS by name (libcublas.so.12) on a GPU.
    The inference environment installs it as the nvidia-cublas-cu12 wheel, whose folder is on no
    library path: loaded here first, globally, it answers that lookup by its soname."""
    import ctypes
    import importlib.util

    try:
        package = importlib.util.find_spec("nvidia.cublas")
    except ModuleNotFoundError:
        package = None
    if package is None or not package.submodule_search_locations:
        return  # no wheel: a system CUDA on the library path, or CTranslate2's own error names the library
    folder = Path(list(package.submodule_search_locations)[0]) / "lib"
    for name in CUBLAS_LIBRARIES:
        ctypes.CDLL(str(folder / name), mode=ctypes.RTLD_GLOBAL)


class CTranslate2Engine:
    name: ClassVar[EngineName] = "ctranslate2"
    batching: ClassVar[Batching] = (
        "static"  # a batch runs to its end; sequences that arrive meanwhile wait for the next
    )
    seeds_every_sequence: ClassVar[bool] = False  # unseeded sampling draws from CTranslate2's own generator

    def __init__(
        self,
        model_dir: Path,
        device: str,
        threads: int,
        max_batch_size: int,
        eos_token_id: int,
        seeded_engine: Callable[[], Engine],
    ):
        import ctranslate2

        self.device = device
        self.max_batch_size = max_batch_size
        self.eos_token_id = eos_token_id
        self.vocabulary: list[str] = json.loads((model_dir / "vocabulary.json").read_text())
        if device == "cuda":
            load_cublas()
        self.generator = ctranslate2.Generator(
            str(model_dir),
            device=device,
            compute_type=COMPUTE_TYPES[device],
            inter_threads=1,  # one batch at a time; the scheduler feeds it
            intra_threads=threads if device == "cpu" else 0,
        )
        self._seeded_engine = seeded_engine  # () -> the engine for seeded sampling, made on first call
        self._seeded: Engine | None = None
        self._waiting: list[Sequence] = []

    @classmethod
    def load(
        cls, content: ModelContent, weights: Path, settings: ServingSettings, config: EngineConfig
    ) -> CTranslate2Engine:
        import ctranslate2

        from .transformers import TransformersEngine

        key = f"{content.digest[:32]}-ctranslate2-{ctranslate2.__version__}-{QUANTIZATION}"
        model_dir = cached_conversion(
            settings.cache_dir, key, "ctranslate2", weights, content.folder / "components" / "tokenizer"
        )
        return cls(
            model_dir,
            config.device,
            config.threads,
            config.max_batch_size,
            int(json.loads((weights / "config.json").read_text())["eos_token_id"]),
            lambda: TransformersEngine.load(content, weights, settings, config),
        )

    @property
    def busy(self) -> bool:
        return bool(self._waiting) or bool(self._seeded and self._seeded.busy)

    def add(self, sequence: Sequence) -> None:
        if sequence.params.seed is not None and not sequence.params.greedy:
            self._seeded = self._seeded or self._seeded_engine()
            self._seeded.add(sequence)
        else:
            self._waiting.append(sequence)

    def remove(self, sequence: Sequence) -> None:
        if sequence in self._waiting:
            self._waiting.remove(sequence)  # a running one stops at its next token (its callback)
        elif self._seeded is not None:
            self._seeded.remove(sequence)

    def occupancy(self) -> None:
        return None  # no queue or KV cache of its own: the scheduler's counts say it all

    def close(self) -> None:
        pass  # the model lives in this process's memory, freed with the engine

    def step(self, events: EngineEvents) -> None:
        if self._seeded is not None and self._seeded.busy:
            self._seeded.step(events)
        batch, self._waiting = self._waiting[: self.max_batch_size], self._waiting[self.max_batch_size :]
        for _, group in itertools.groupby(sorted(batch, key=_sampling_key), key=_sampling_key):
            self._generate(list(group), events)

    def _generate(self, sequences: list[Sequence], events: EngineEvents) -> None:
        params = sequences[0].params
        shortest = min(len(s.prompt_ids) for s in sequences)
        # CTranslate2 forwards the first `shortest` tokens of every prompt at once and feeds the
        # rest of longer prompts through the decoding loop: those steps are prompt, not output.
        offsets = [len(s.prompt_ids) - shortest for s in sequences]
        stopped = [False] * len(sequences)

        def on_step(step) -> bool:
            k = step.batch_id
            if stopped[k] or step.step < offsets[k]:
                return stopped[k]
            stopped[k] = events.on_tokens(sequences[k], [step.token_id], step.is_last)
            return stopped[k]

        self.generator.generate_batch(
            [[self.vocabulary[t] for t in s.prompt_ids] for s in sequences],
            max_length=max(o + s.params.max_new_tokens for o, s in zip(offsets, sequences, strict=True)),
            include_prompt_in_result=False,
            end_token=[self.eos_token_id],
            return_end_token=True,  # the stopping object sees the eos token and names it
            repetition_penalty=params.repetition_penalty,
            sampling_topk=1 if params.greedy else min(params.top_k, len(self.vocabulary)),  # k > vocabulary: all of it
            sampling_topp=1.0 if params.greedy else params.top_p,
            sampling_temperature=1.0 if params.greedy else params.temperature,
            callback=on_step,
        )
        for k, sequence in enumerate(sequences):  # one the callback never ended ran out of max_length
            if not stopped[k]:
                events.on_tokens(sequence, [], True)


def _sampling_key(sequence: Sequence) -> str:
    """Sequences with equal keys sample alike, so they can share one generate_batch call."""
    return repr(sequence.params.sampling_key())


# The scheduler drives engines through its Engine Protocol: this has mypy check that CTranslate2Engine is one.
_ENGINE: type[Engine] = CTranslate2Engine

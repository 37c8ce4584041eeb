"""The fast engine: CTranslate2 with int8 weights (LM head included), KV cache, prompt in one pass.

One generate_batch call decodes a whole group of prompts. Prompts whose sampling settings
differ cannot share a call (CTranslate2 takes one setting per call), so a batch is split into
groups by GenerationParams.sampling_key(); max_new_tokens and stop strings stay per prompt,
enforced from the per-token callback, which also hands each prompt back the moment it ends.
A seeded prompt runs alone on a fresh Generator created right after set_random_seed:
CTranslate2 seeds each worker thread's random generator once, at its first draw, so only new
threads see a new seed. That costs a model load per seeded prompt (fast from the page cache),
and makes the text independent of whatever else was in the batch.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Sequence

from ..settings import ServingSettings
from .base import Generation, OnFinished, Prompt
from .conversion import converted_model

COMPUTE_TYPES = {"cpu": "int8", "cuda": "int8_float16"}


class CTranslate2Engine:
    name = "ctranslate2"

    def __init__(self, model_dir: Path, device: str, threads: int, eos_token_id: int):
        self.model_dir = model_dir
        self.device = device
        self.threads = threads
        self.eos_token_id = eos_token_id
        self.vocabulary: list[str] = json.loads((model_dir / "vocabulary.json").read_text())
        self.generator = self._new_generator()

    @classmethod
    def load(cls, mlflow_dir: Path, settings: ServingSettings) -> "CTranslate2Engine":
        config = json.loads((Path(mlflow_dir) / "model" / "config.json").read_text())
        return cls(
            converted_model(mlflow_dir, settings.cache_dir),
            settings.resolved_device(),
            settings.thread_count,
            int(config["eos_token_id"]),
        )

    def _new_generator(self):
        import ctranslate2

        return ctranslate2.Generator(
            str(self.model_dir),
            device=self.device,
            compute_type=COMPUTE_TYPES[self.device],
            inter_threads=1,  # one batch at a time; the batcher feeds it
            intra_threads=self.threads if self.device == "cpu" else 0,
        )

    def generate(self, batch: Sequence[Prompt], on_finished: OnFinished | None = None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(batch)

        def finish(index: int, generation: Generation) -> None:
            results[index] = generation
            if on_finished:
                on_finished(index, generation)

        for group in _sampling_groups(batch):
            self._generate_group(batch, group, finish)
        return results  # type: ignore[return-value]

    def _generate_group(self, batch: Sequence[Prompt], indices: list[int], finish) -> None:
        import ctranslate2

        prompts = [batch[i] for i in indices]
        params = prompts[0].params
        shortest = min(len(p.token_ids) for p in prompts)
        # CTranslate2 forwards the first `shortest` tokens of every prompt at once and feeds the
        # rest of longer prompts through the decoding loop: those steps are prompt, not output.
        offsets = [len(p.token_ids) - shortest for p in prompts]
        generated: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)

        def end(k: int, reason: str) -> bool:
            if not done[k]:
                done[k] = True
                finish(indices[k], Generation(generated[k], reason))
            return True

        def on_step(step) -> bool:
            k = step.batch_id
            if done[k]:
                return True
            if step.step < offsets[k]:
                return False
            if step.token_id == self.eos_token_id:
                return end(k, "eos")
            generated[k].append(step.token_id)
            prompt = prompts[k]
            if len(generated[k]) >= prompt.params.max_new_tokens:
                return end(k, "length")
            if prompt.should_stop and prompt.should_stop(generated[k]):
                return end(k, "stop")
            return end(k, "length") if step.is_last else False

        generator = self.generator
        if params.seed is not None and not params.greedy:
            ctranslate2.set_random_seed(params.seed)
            generator = self._new_generator()
        generator.generate_batch(
            [[self.vocabulary[t] for t in p.token_ids] for p in prompts],
            max_length=max(o + p.params.max_new_tokens for o, p in zip(offsets, prompts)),
            include_prompt_in_result=False,
            end_token=[self.eos_token_id],
            repetition_penalty=params.repetition_penalty,
            sampling_topk=1 if params.greedy else min(params.top_k, len(self.vocabulary)),  # k > vocabulary: all of it
            sampling_topp=1.0 if params.greedy else params.top_p,
            sampling_temperature=1.0 if params.greedy else params.temperature,
            callback=on_step,
        )
        for k in range(len(prompts)):  # a prompt the callback never ended ran out of max_length
            end(k, "length")


def _sampling_groups(batch: Sequence[Prompt]) -> list[list[int]]:
    """Indices of the batch grouped by sampling settings; every seeded prompt alone."""
    keyed = sorted(range(len(batch)), key=lambda i: repr(batch[i].params.sampling_key()))
    groups = []
    for key, members in itertools.groupby(keyed, key=lambda i: repr(batch[i].params.sampling_key())):
        members = list(members)
        seeded = batch[members[0]].params.seed is not None and not batch[members[0]].params.greedy
        groups.extend([[m] for m in members] if seeded else [members])
    return groups

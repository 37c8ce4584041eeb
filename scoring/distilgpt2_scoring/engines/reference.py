"""The reference engine: the model's own transformers generate(), one prompt at a time, exact.

Used to check the fast engine and as a fallback (TEXTGEN_ENGINE=transformers). Seeded
requests reset torch's generator first, so the same seed gives the same text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..settings import ServingSettings
from .base import Generation, OnFinished, Prompt


class TransformersEngine:
    name = "transformers"

    def __init__(self, model, device: str):
        self.model = model
        self.device = device
        self.eos_token_id = model.generation_config.eos_token_id

    @classmethod
    def load(cls, mlflow_dir: Path, settings: ServingSettings) -> "TransformersEngine":
        import torch
        from transformers import AutoModelForCausalLM

        device = settings.resolved_device()
        torch.set_num_threads(settings.thread_count)
        torch.seed()  # unseeded requests must not repeat across restarts
        model = AutoModelForCausalLM.from_pretrained(
            Path(mlflow_dir) / "model",
            use_safetensors=True,
            trust_remote_code=False,
            dtype=torch.float16 if device == "cuda" else torch.float32,
        )
        return cls(model.to(device).eval(), device)

    def generate(self, batch: Sequence[Prompt], on_finished: OnFinished | None = None) -> list[Generation]:
        results = []
        for index, prompt in enumerate(batch):
            result = self._generate_one(prompt)
            if on_finished:
                on_finished(index, result)
            results.append(result)
        return results

    def _sampling_kwargs(self, prompt: Prompt) -> dict:
        p = prompt.params
        kwargs = {"max_new_tokens": p.max_new_tokens, "repetition_penalty": p.repetition_penalty}
        if p.greedy:
            return kwargs | {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return kwargs | {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k}

    def _generate_one(self, prompt: Prompt) -> Generation:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        input_ids = torch.tensor([prompt.token_ids], device=self.device)
        stopped = []

        class _ShouldStop(StoppingCriteria):
            def __call__(self, ids, scores, **kwargs):
                done = bool(prompt.should_stop(ids[0, input_ids.shape[1]:].tolist()))
                stopped.append(done)
                return torch.tensor([done], device=ids.device)

        if prompt.params.seed is not None and not prompt.params.greedy:
            torch.manual_seed(prompt.params.seed)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                pad_token_id=self.eos_token_id,
                stopping_criteria=StoppingCriteriaList([_ShouldStop()]) if prompt.should_stop else None,
                **self._sampling_kwargs(prompt),
            )
        new_ids = output[0, input_ids.shape[1]:].tolist()
        if new_ids and new_ids[-1] == self.eos_token_id:
            return Generation(new_ids[:-1], "eos")
        return Generation(new_ids, "stop" if stopped and stopped[-1] else "length")

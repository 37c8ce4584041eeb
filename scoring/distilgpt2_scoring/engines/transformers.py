"""The reference engine: the model's own transformers generate(), one sequence per step, exact.

Used to check the fast engines, as a fallback (TEXTGEN_ENGINE=transformers) and for seeded
sampling on CUDA. Each token leaves through a StoppingCriteria as soon as it is made, so the
scheduler's stopping object and deadlines work as with any engine. Sampling seeds torch's
generator with the sequence's own seed first, so the same seed gives the same text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..hardware import EngineConfig, EngineName
from ..model_files import ModelContent
from ..scheduler import Batching, Engine, EngineEvents
from ..sequences import Sequence
from ..settings import ServingSettings


class TransformersEngine:
    name: ClassVar[EngineName] = "transformers"
    batching: ClassVar[Batching] = "sequential"  # one sequence at a time
    seeds_every_sequence: ClassVar[bool] = True

    def __init__(self, model, device: str, eos_token_id: int):
        self.model = model
        self.device = device
        self.eos_token_id = eos_token_id
        self._waiting: list[Sequence] = []

    @classmethod
    def load(
        cls, content: ModelContent, weights: Path, settings: ServingSettings, config: EngineConfig
    ) -> TransformersEngine:
        import torch
        from transformers import AutoModelForCausalLM

        device = settings.torch_device()
        torch.set_num_threads(config.threads)
        model = AutoModelForCausalLM.from_pretrained(
            weights,
            use_safetensors=True,
            trust_remote_code=False,
            dtype=torch.float16 if device == "cuda" else torch.float32,
        )
        # transformers declares .to with functools.wraps(torch.nn.Module.to), which types the bound
        # method as the unbound one (its first argument a module): the device is right.
        return cls(model.to(device).eval(), device, int(model.config.eos_token_id))  # type: ignore[arg-type]

    @property
    def busy(self) -> bool:
        return bool(self._waiting)

    def add(self, sequence: Sequence) -> None:
        self._waiting.append(sequence)

    def remove(self, sequence: Sequence) -> None:
        if sequence in self._waiting:
            self._waiting.remove(sequence)  # the running one stops at its next token

    def occupancy(self) -> None:
        return None  # no queue or KV cache of its own: the scheduler's counts say it all

    def close(self) -> None:
        pass  # the model lives in this process's memory, freed with the engine

    def step(self, events: EngineEvents) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        sequence = self._waiting.pop(0)
        input_ids = torch.tensor([sequence.prompt_ids], device=self.device)

        class Report(StoppingCriteria):
            def __call__(self, ids, scores, **kwargs):
                stop = events.on_tokens(sequence, [int(ids[0, -1])], False)
                return torch.tensor([stop], device=ids.device)

        params = sequence.params
        sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if not params.greedy:
            sampling = {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k,
            }
            torch.manual_seed(sequence.seed)
        with torch.inference_mode():
            self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                pad_token_id=self.eos_token_id,
                eos_token_id=self.eos_token_id,
                max_new_tokens=params.max_new_tokens,
                repetition_penalty=params.repetition_penalty,
                stopping_criteria=StoppingCriteriaList([Report()]),
                **sampling,
            )
        if not sequence.done:  # generate() ended on its own without our stopping object's word
            events.on_tokens(sequence, [], True)


# The scheduler drives engines through its Engine Protocol: this has mypy check that TransformersEngine is one.
_ENGINE: type[Engine] = TransformersEngine

"""What every engine takes and returns: validated, tokenized prompts in; token ids and a finish reason out.

Engines know nothing about HTTP or JSON; the codec knows nothing about torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol, Sequence

from ..params import GenerationParams

FinishReason = Literal["length", "eos", "stop"]
# Called with the ids generated so far; True ends this prompt's generation (stop string, or
# the client went away).
ShouldStop = Callable[[list[int]], bool]


@dataclass
class Prompt:
    token_ids: list[int]
    params: GenerationParams
    should_stop: ShouldStop | None = None


@dataclass
class Generation:
    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason = "length"


# Called as soon as one prompt of a batch is finished, with its index in the batch.
OnFinished = Callable[[int, Generation], None]


class Engine(Protocol):
    name: str

    def generate(self, batch: Sequence[Prompt], on_finished: OnFinished | None = None) -> list[Generation]:
        """Generate for every prompt of the batch, each with its own params; call on_finished per prompt."""
        ...

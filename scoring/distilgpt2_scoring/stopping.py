"""Why a sequence ends: the one place that decides (text-generation-inference's StoppingCriteria).

Checked after every generated token by the scheduler, whatever the engine. Engines are told the
same max_new_tokens and end-of-sequence token so that they stop on their own at the same token,
but the finish reason a client sees always comes from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

FinishReason = Literal["length", "eos", "stop"]


class Stopping:
    """`stopping(token_ids)` -> the reason the sequence ends with its last token, or None to go on.

    eos: the model's end-of-sequence token (not part of the text). stop: the text now contains a
    stop string; only the last few tokens are decoded, since a stop string that appears now must
    overlap the newest token and spans at most len(stop) tokens (plus byte-level BPE fragments).
    cut_at_stop cuts the text before the stop string. length: max_new_tokens reached.
    """

    def __init__(
        self,
        max_new_tokens: int,
        eos_token_id: int,
        stops: tuple[str, ...] = (),
        decode: Callable[[list[int]], str] | None = None,
    ):
        if stops and decode is None:
            raise ValueError("stop strings need a decode function")
        self.max_new_tokens = max_new_tokens
        self.eos_token_id = eos_token_id
        self.stops = stops
        self.decode = decode
        self.window = 2 * max((len(s) for s in stops), default=0) + 4

    def __call__(self, token_ids: list[int]) -> FinishReason | None:
        if token_ids and token_ids[-1] == self.eos_token_id:
            return "eos"
        if (
            self.stops
            and self.decode is not None
            and any(stop in self.decode(token_ids[-self.window :]) for stop in self.stops)
        ):
            return "stop"
        if len(token_ids) >= self.max_new_tokens:
            return "length"
        return None


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    """The text before the first stop string it contains (a stop string never reaches the client)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]

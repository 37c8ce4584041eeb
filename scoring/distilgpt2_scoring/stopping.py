"""Stop strings as a small callable, checked after every generated token (text-generation-inference style)."""

from __future__ import annotations

from typing import Callable


class StopStrings:
    """True once the generated text contains one of the stop strings.

    Only the last few tokens are decoded per step: a stop string that appears now must overlap
    the newest token, and it spans at most len(stop) tokens (plus byte-level BPE fragments).
    The final text is cut before the first occurrence by the codec.
    """

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]):
        self.decode = decode
        self.stops = stops
        self.window = 2 * max(len(s) for s in stops) + 4

    def __call__(self, token_ids: list[int]) -> bool:
        tail = self.decode(token_ids[-self.window:])
        return any(stop in tail for stop in self.stops)

"""One sequence's text, handed out piece by piece as its tokens arrive (for streamed answers).

A piece never splits a UTF-8 character: a byte-level BPE token can hold part of one, which the
tokenizer decodes as U+FFFD at the end of the text; that end is held back until the next token
completes it (text-generation-inference's prefix/read offsets). A piece never shows the start of
a possible stop string before it is known not to be one, so the client never sees stop text.
Joined, the pieces are exactly the non-streamed text: the whole text cut before its first stop string.
"""

from __future__ import annotations

from collections.abc import Callable

from .stopping import cut_at_stop

INCOMPLETE = "\ufffd"


class TextStream:
    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]):
        self.decode = decode
        self.stops = stops
        self.token_ids: list[int] = []
        self._prefix = self._read = 0  # token offsets: decoded up to _read, re-decoded from _prefix for context
        self._pending = ""  # decoded, not yet handed out
        self._stopped = False  # a stop string was reached: nothing more is handed out

    def feed(self, token_ids: list[int]) -> str:
        """New tokens -> the text that can be sent now (maybe empty)."""
        self.token_ids += token_ids
        self._take_decoded(final=False)
        return self._release(final=False)

    def finish(self) -> str:
        """The sequence has ended: the rest of its text."""
        self._take_decoded(final=True)
        return self._release(final=True)

    def _take_decoded(self, final: bool) -> None:
        before = self.decode(self.token_ids[self._prefix : self._read])
        now = self.decode(self.token_ids[self._prefix :])
        if len(now) > len(before) and (final or not now.endswith(INCOMPLETE)):
            self._pending += now[len(before) :]
            self._prefix, self._read = self._read, len(self.token_ids)

    def _release(self, final: bool) -> str:
        if self._stopped:
            return ""
        cut = cut_at_stop(self._pending, self.stops)
        if len(cut) < len(self._pending):
            self._stopped = True
        elif not final:  # keep back an end that may be the start of a stop string
            cut = self._pending[: len(self._pending) - self._possible_stop_start()]
        self._pending = self._pending[len(cut) :]
        return cut

    def _possible_stop_start(self) -> int:
        """Length of the longest end of the pending text that begins some stop string."""
        ends = (
            n
            for stop in self.stops
            for n in range(min(len(stop) - 1, len(self._pending)), 0, -1)
            if self._pending.endswith(stop[:n])
        )
        return max(ends, default=0)

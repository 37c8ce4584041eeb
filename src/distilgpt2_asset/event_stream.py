"""The one reader of a streamed answer (server-sent events): invoke, the benchmark's clients and the soak.

The server sends `data: <JSON>` per event and `data: [DONE]` last (scoring's codec, and OpenAI's
completions stream the same way); anything else on the wire (blank separators, comments) is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

DATA = "data: "
DONE = "[DONE]"


class StreamCut(Exception):
    """The stream ended before its `data: [DONE]` line: the answer is incomplete."""


def events(lines: Iterable[str | bytes]) -> Iterator[dict[str, Any]]:
    """Each event's JSON object in order, from a response's lines (`response.iter_lines()`); returns at
    `[DONE]`, raises StreamCut where the lines end without it, ValueError on an event that is not JSON."""
    for line in lines:
        text = line.decode() if isinstance(line, bytes) else line
        if not text.startswith(DATA):
            continue
        data = text[len(DATA) :]
        if data == DONE:
            return
        yield json.loads(data)
    raise StreamCut("the stream ended before its [DONE] event")

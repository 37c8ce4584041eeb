"""One record per request: what happened to it, in figures an operator can query.

score.run opens a RequestRecord when a request arrives and makes it the current one of its thread
(a context variable, so that the service needs no extra argument); the service notes the decoded
request and its sequence group on it; the record is finished with the HTTP status when the answer
is complete (a stream: when its last event has left) and handed to the exporters. Timings are
time.monotonic() seconds; the record reads them from the sequence group, which the engine thread
stamps (sequences.py).
"""

from __future__ import annotations

import contextvars
import operator
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# An early end of a streamed answer (sequences.py's group.ended) named as the error_type a
# whole answer would carry for it (errors.py), so that queries count both alike.
STREAM_ERRORS = {
    "deadline": "deadline_exceeded",
    "shutdown": "model_not_ready",
    "failed": "internal",
    "cancelled": "cancelled",
}
# Answers that refuse work the server could not take (429, 503): counted by cause.
REFUSALS = frozenset({"overloaded", "deadline_exceeded", "model_not_ready"})
REQUEST_ID_HEADERS = {"request_id": "x-ms-request-id", "client_request_id": "x-ms-client-request-id"}

current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar("request_record", default=None)


@dataclass
class RequestRecord:
    """The fields of the log line (`fields()`); KQL queries in jobs/monitor/ read them by name."""

    request_id: str | None = None  # Azure's x-ms-request-id (the endpoint's id of this request)
    client_request_id: str | None = None  # x-ms-client-request-id, as the client sent it
    started: float = field(default_factory=time.monotonic)
    engine: str | None = None
    shape: str | None = None  # azure | openai; None: refused before its body was understood
    stream: bool = False
    status: int | None = None
    error_type: str | None = None
    prompts: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: dict[str, int] = field(default_factory=dict)
    queue_wait_s: float | None = None  # submitted -> its first sequence in the engine's batch
    time_to_first_token_s: float | None = None  # arrival -> the first token of any of its sequences
    total_s: float | None = None  # arrival -> the answer complete (a stream: its last event)
    tokens_per_s: float | None = None  # completion tokens / (total - time to first token)
    batch_size_at_admission: int | None = None  # sequences already in the batch when it joined
    prompt_text: list[str] | None = None  # TEXTGEN_LOG_TEXT=true only
    completion_text: list[str] | None = None
    time_per_output_token_s: float | None = None  # its mean gap between two tokens (metrics only)
    group: Any = field(default=None, repr=False)
    request: Any = field(default=None, repr=False)

    @classmethod
    def arriving(cls, headers, engine: str | None) -> RequestRecord:
        ids = {name: headers.get(header) for name, header in REQUEST_ID_HEADERS.items()}
        return cls(engine=engine, **ids)

    @property
    def refusal(self) -> str | None:
        """The cause when the server refused or dropped this request for want of capacity or time."""
        return self.error_type if self.error_type in REFUSALS else None

    def note_request(self, request) -> None:
        self.request = request
        self.shape, self.stream = request.shape, request.params.stream
        self.prompts, self.samples = len(request.prompts), request.samples

    def finish(self, status: int, error_type: str | None = None) -> None:
        """The answer is complete: take the figures from the request's sequences."""
        self.status, self.error_type = status, error_type
        now = time.monotonic()
        self.total_s = now - self.started
        group = self.group
        if group is None:
            return
        if group.ended is not None and self.error_type is None:
            self.error_type = STREAM_ERRORS.get(group.ended, group.ended)
        sequences = group.sequences
        self.prompt_tokens = sum(len(s.prompt_ids) for s in sequences)
        self.completion_tokens = sum(len(s.token_ids) for s in sequences)
        self.finish_reasons = dict(Counter(s.finish_reason or group.ended or "unfinished" for s in sequences))
        if group.joined_at is not None:
            self.queue_wait_s = group.joined_at - group.created
            self.batch_size_at_admission = group.batch_at_join
        firsts = [s.token_times[0] for s in sequences if s.token_times]
        if firsts:
            self.time_to_first_token_s = min(firsts) - self.started
            decoding = self.total_s - self.time_to_first_token_s
            self.tokens_per_s = self.completion_tokens / decoding if decoding > 0 else None
        if gaps := sum(len(s.token_times) - 1 for s in sequences if s.token_times):
            self.time_per_output_token_s = (
                sum(s.token_times[-1] - s.token_times[0] for s in sequences if s.token_times) / gaps
            )

    def inter_token_gaps(self) -> Iterator[float]:
        """Every gap between two tokens of a sequence, computed when a per-token histogram asks."""
        for s in self.group.sequences if self.group is not None else ():
            times = s.token_times
            yield from map(operator.sub, times[1:], times[:-1])

    def keep_text(self, text_of) -> None:
        """Prompt and answer text in the record (TEXTGEN_LOG_TEXT=true, or the data collector): the
        prompt of each sequence and its answer (text_of(sequence))."""
        if self.request is not None and self.group is not None:
            prompts, samples = self.request.prompts, self.request.samples
            self.prompt_text = [prompts[i // samples] for i in range(len(self.group.sequences))]
            self.completion_text = [text_of(s) for s in self.group.sequences]

    def fields(self, text: bool = False) -> dict[str, Any]:
        """The record as the log line's JSON object: every field but the internal ones; the text
        only when asked for (TEXTGEN_LOG_TEXT) and kept."""
        skipped = {"started", "time_per_output_token_s", "group", "request"}
        if not text:
            skipped |= {"prompt_text", "completion_text"}
        out = {k: v for k, v in self.__dict__.items() if k not in skipped}
        for name in ("queue_wait_s", "time_to_first_token_s", "total_s", "tokens_per_s"):
            if out[name] is not None:
                out[name] = round(out[name], 6)
        return out


def note_request(request) -> None:
    """Service hook: the decoded request of this thread's current record (no-op without one)."""
    if (record := current.get()) is not None:
        record.note_request(request)


def note_group(group) -> None:
    """Service hook: the sequence group the request's figures are read from."""
    if (record := current.get()) is not None:
        record.group = group

"""What the scheduler's engine thread and a request's thread share: sequences and their group.

A Sequence is one prompt being generated (text-generation-inference's Request): the engine
thread appends its tokens, the Stopping object decides when and why it ends. A SequenceGroup
holds one HTTP request's sequences (several prompts, or n samples of one), with the request's
deadline and one condition variable: the request thread sleeps on it. A streaming group wakes it
for every new token, so an event leaves as soon as its token exists; any other group only when a
sequence finishes, because waking dozens of waiting threads at every step takes the engine
thread's time on 2 cores. Either side can end the group early: the request thread cancels it
(client gone, deadline), the engine thread drops its sequences at the next step and never
generates for a cancelled or expired group.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .errors import ClientGone, DeadlineExceeded, EngineFailed, ModelNotReady
from .params import GenerationParams
from .stopping import FinishReason, Stopping

POLL_SECONDS = 0.25  # how often a waiting request checks whether its client is still there
_ids = itertools.count(1)
_deadlines_missed = itertools.count(1)
logger = logging.getLogger(__name__)

# Why a group ended before its sequences finished, and what its request thread raises for it.
CANCELLED, DEADLINE, SHUTDOWN, FAILED = "cancelled", "deadline", "shutdown", "failed"
_RAISED = {
    CANCELLED: lambda: ClientGone(),
    DEADLINE: lambda: DeadlineExceeded(
        "the request's deadline passed before its text was complete; retry later or ask for fewer tokens"
    ),
    SHUTDOWN: lambda: ModelNotReady("the server is shutting down"),
    FAILED: lambda: EngineFailed("generation failed on the server; see its log"),
}


@dataclass(eq=False)
class Sequence:
    prompt_ids: list[int]
    params: GenerationParams
    stopping: Stopping
    seed: int | None = None  # the sampling seed (drawn for unseeded sampling requests); None when greedy
    id: int = field(default_factory=lambda: next(_ids))
    token_ids: list[int] = field(default_factory=list)  # generated so far; the eos token is not kept
    finish_reason: FinishReason | None = None
    # Set by the SequenceGroup the sequence is made into, before the scheduler or an engine sees it.
    group: SequenceGroup = field(init=False, repr=False)
    token_times: list[float] = field(default_factory=list)  # monotonic time of each step that gave tokens

    @property
    def done(self) -> bool:
        return self.finish_reason is not None or self.group.ended is not None

    @property
    def watched(self) -> bool:
        """Its tokens are wanted soon after they are made: streamed, or checked for stop strings as the
        text grows. Any other sequence's are wanted when it ends (an engine in another process then
        wakes the server's engine thread less often)."""
        return self.group.streaming or bool(self.stopping.stops)

    def extend(self, token_ids: list[int], made_at: list[float] | None = None) -> None:
        """Engine thread: take new tokens one by one until the stopping object ends the sequence.
        made_at: the time of each step that gave them, when they are reported after it (default:
        now, for a step that just gave them)."""
        with self.group.changed:
            if token_ids:
                self.token_times += made_at or [time.monotonic()]
            for token in token_ids:
                if self.finish_reason is not None:
                    break
                self.token_ids.append(token)
                self.finish_reason = self.stopping(self.token_ids)
                if self.finish_reason == "eos":
                    self.token_ids.pop()
            if self.group.streaming or self.finish_reason is not None:
                self.group.changed.notify_all()

    def finish(self, reason: FinishReason) -> None:
        with self.group.changed:
            if self.finish_reason is None:
                self.finish_reason = reason
            self.group.changed.notify_all()


@dataclass
class Update:
    """What a request thread reads: sequence `index` has new tokens, and maybe its finish reason."""

    index: int
    token_ids: list[int]
    finish_reason: FinishReason | None


class SequenceGroup:
    def __init__(self, sequences: list[Sequence], deadline: float, streaming: bool = False):
        self.sequences = sequences
        self.deadline = deadline  # time.monotonic() value
        self.streaming = streaming  # its request thread reads every token as it comes
        self.changed = threading.Condition()
        self.ended: str | None = None  # CANCELLED | DEADLINE | SHUTDOWN | FAILED, when ended early
        self.created = time.monotonic()  # for the request's record (observability): its queue wait
        self.joined_at: float | None = None  # when its first sequence joined the engine's batch
        self.batch_at_join: int | None = None  # sequences already running then
        for sequence in sequences:
            sequence.group = self

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def finished(self) -> bool:
        return all(s.finish_reason is not None for s in self.sequences)

    def end(self, why: str) -> None:
        """End every unfinished sequence early; the engine thread drops them at its next step."""
        with self.changed:
            if self.ended is None and not self.finished:
                self.ended = why
                if why == DEADLINE:
                    logger.warning("a request passed its deadline and was dropped (%d so far)", next(_deadlines_missed))
            self.changed.notify_all()

    def stop_reason(self) -> str | None:
        """Engine thread: why this group's sequences must leave the batch now, if they must."""
        if self.ended is None and time.monotonic() >= self.deadline:
            self.end(DEADLINE)
        return self.ended

    def follow(self, client_gone: Callable[[], bool] | None = None) -> Iterator[Update]:
        """Request thread: every sequence's new tokens as they come, each sequence's last update
        carrying its finish reason. Raises the error of an early end (ClientGone, DeadlineExceeded...)."""
        seen = [0] * len(self.sequences)
        reported = [False] * len(self.sequences)
        next_check = time.monotonic() + POLL_SECONDS
        while not all(reported):
            with self.changed:
                while not (updates := self._news(seen, reported)) and self.ended is None:
                    now = time.monotonic()
                    left = self.deadline - now
                    if left <= 0:
                        self.end(DEADLINE)
                        break
                    self.changed.wait(min(left, max(next_check - now, 0)) if client_gone else left)
                    # the client is asked every POLL_SECONDS, not at every token a streamed group wakes for
                    if client_gone and time.monotonic() >= next_check:
                        next_check = time.monotonic() + POLL_SECONDS
                        if client_gone():
                            self.end(CANCELLED)
                if not updates and self.ended is not None:
                    raise _RAISED[self.ended]()
            yield from updates

    def wait(self, client_gone: Callable[[], bool] | None = None) -> None:
        """Request thread: until every sequence is finished (or the group ended early: its error)."""
        for _ in self.follow(client_gone):
            pass

    def _news(self, seen: list[int], reported: list[bool]) -> list[Update]:
        updates = []
        for index, sequence in enumerate(self.sequences):
            tokens, reason = sequence.token_ids, sequence.finish_reason
            if reported[index] or (len(tokens) == seen[index] and reason is None):
                continue
            updates.append(Update(index, tokens[seen[index] :], reason))
            seen[index], reported[index] = len(tokens), reason is not None
        return updates

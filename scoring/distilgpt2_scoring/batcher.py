"""Dynamic batching: prompts from concurrent requests share engine batches.

One worker thread owns the engine. Requests put their prompts on a bounded queue and wait;
whatever is queued when the engine becomes free forms the next batch (up to max_batch_size),
so prompts that arrive while a batch runs join the next one (after a batch, the worker waits
briefly for that batch's clients to come back, so that closed-loop clients do not split into
a lone early-comer and the rest). Each prompt keeps its own params
and its request is released the moment its last prompt finishes. A full queue refuses new
work at once (Overloaded -> 429 + Retry-After); a request whose client went away is
cancelled: its queued prompts are dropped and its running ones stop at the next token.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Callable, Sequence

from .engines.base import Engine, Generation, Prompt
from .errors import ModelNotReady, Overloaded

POLL_SECONDS = 0.25  # how often a waiting request checks whether its client is still there
# The wait for returning clients is also capped at this share of the last batch's duration, so
# short generations never spend a large part of their time waiting for company.
WAIT_SHARE_OF_BATCH = 0.05
logger = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client disconnected while its request waited; nobody will read the answer."""


class Ticket:
    """One request's prompts in flight: filled in by the worker, awaited by the request thread."""

    def __init__(self, size: int, on_cancel: Callable[["Ticket"], None] | None = None):
        self.on_cancel = on_cancel
        self.generations: list[Generation | None] = [None] * size
        self.remaining = size
        self.error: BaseException | None = None
        self.cancelled = False
        self._done = threading.Event()

    def finish(self, index: int, generation: Generation) -> None:
        if self.generations[index] is None:
            self.generations[index] = generation
            self.remaining -= 1
            if self.remaining == 0:
                self._done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._done.set()

    def cancel(self) -> None:
        """Running prompts stop at their next token; queued ones leave the queue now."""
        self.cancelled = True
        if self.on_cancel:
            self.on_cancel(self)

    def wait(self, client_gone: Callable[[], bool] | None = None) -> list[Generation]:
        while not self._done.wait(POLL_SECONDS if client_gone else None):
            if client_gone():
                self.cancel()
                raise ClientGone()
        if self.error is not None:
            raise self.error
        return self.generations  # type: ignore[return-value]


class Batcher:
    def __init__(self, engine: Engine, max_batch_size: int, max_queue: int, batch_wait_s: float = 0.0):
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.batch_wait_s = batch_wait_s
        self._queue: deque[tuple[Ticket, int, Prompt]] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._expected = 0  # prompts due soon after the last batch: its clients and those queued
        self._expected_by = 0.0
        self._worker = threading.Thread(target=self._run, name="textgen-batcher", daemon=True)
        self._worker.start()
        # Stop the worker before interpreter teardown destroys the engine under it.
        atexit.register(self.close)

    def submit(self, prompts: Sequence[Prompt]) -> Ticket:
        ticket = Ticket(len(prompts), on_cancel=self._drop)
        with self._ready:
            if len(self._queue) + len(prompts) > self.max_queue:
                raise Overloaded(
                    f"server busy: {len(self._queue)} prompts are waiting (limit {self.max_queue}); retry shortly",
                    retry_after=1,
                )
            for index, prompt in enumerate(prompts):
                self._queue.append((ticket, index, replace(prompt, should_stop=_cancellable(ticket, prompt))))
            self._ready.notify()
        return ticket

    def _drop(self, ticket: Ticket) -> None:
        with self._ready:
            self._queue = deque(item for item in self._queue if item[0] is not ticket)

    def close(self) -> None:
        """Finish the running batch, fail what is still queued, stop the worker."""
        with self._ready:
            self._closed = True
            abandoned = list(self._queue)
            self._queue.clear()
            self._ready.notify()
        for ticket, _, _ in abandoned:
            ticket.fail(ModelNotReady("the server is shutting down"))
        self._worker.join(timeout=30)
        atexit.unregister(self.close)

    def _next_batch(self) -> list[tuple[Ticket, int, Prompt]] | None:
        with self._ready:
            while not (self._queue or self._closed):
                self._ready.wait()
            # Right after a batch its clients are sending their next requests: give them until
            # batch_wait_s past the batch's end to join, instead of starting the first one alone.
            # An idle server (that moment long past) starts a lone request at once.
            expected = min(self.max_batch_size, self._expected)
            while len(self._queue) < expected and not self._closed:
                if (left := self._expected_by - time.monotonic()) <= 0:
                    break
                self._ready.wait(left)
            if self._closed:
                return None
            return [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            started = time.monotonic()
            try:
                self.engine.generate(
                    [prompt for _, _, prompt in batch],
                    on_finished=lambda i, generation: batch[i][0].finish(batch[i][1], generation),
                )
            except Exception as exc:  # a server fault: fail these requests, keep serving the rest
                logger.exception("generation failed for a batch of %d prompts", len(batch))
                for ticket, _, _ in batch:
                    ticket.fail(RuntimeError(f"generation failed: {type(exc).__name__}"))
            with self._ready:  # its clients come back behind those already waiting
                ended = time.monotonic()
                self._expected = len(self._queue) + len(batch)
                self._expected_by = ended + min(self.batch_wait_s, WAIT_SHARE_OF_BATCH * (ended - started))


def _cancellable(ticket: Ticket, prompt: Prompt):
    stop = prompt.should_stop
    return lambda ids: ticket.cancelled or bool(stop and stop(ids))

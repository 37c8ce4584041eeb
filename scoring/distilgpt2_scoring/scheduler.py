"""The engine thread: requests join the running batch at the next step and leave it the moment they end.

One thread owns the engine. Request threads submit SequenceGroups (a bounded number in flight:
past it, 429 at once) and sleep on their group; each loop of the engine thread
  1. lets the newly submitted sequences join, unless their group already ended or expired
     (a request still queued at its deadline is never generated);
  2. drops every running sequence whose group ended (client gone, deadline) or expired;
  3. runs one engine step: every running sequence advances by a token (a static engine runs a
     whole batch, still reporting each token as it is made), and each token goes through the
     sequence's Stopping object at once. OpenVINO steps in a worker process of its own: its
     step() takes the reports of the worker's steps (a few steps' tokens at a time: a streamed
     sequence's first at once, then every 20 ms; a sequence read whole's when it ends), and
     returns early when sequences arrive (`arrivals`), so that they join before the worker's
     next step.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

from .errors import ModelNotReady, Overloaded
from .sequences import FAILED, SHUTDOWN, Sequence, SequenceGroup

if TYPE_CHECKING:
    from pathlib import Path

    from .hardware import EngineConfig, EngineName
    from .model_files import ModelContent
    from .settings import ServingSettings

logger = logging.getLogger(__name__)
Batching = Literal["continuous", "static", "sequential"]  # how sequences share an engine


class Engine(Protocol):
    """What the scheduler drives; engines know nothing about HTTP, JSON or stop reasons."""

    name: ClassVar[EngineName]
    batching: ClassVar[Batching]
    seeds_every_sequence: ClassVar[bool]  # an unseeded sampled sequence gets a drawn seed (reported back)

    @classmethod
    def load(cls, content: ModelContent, weights: Path, settings: ServingSettings, config: EngineConfig) -> Engine:
        """The engine built as config says (hardware.decide), its stop token from the model's configuration."""
        ...

    @property
    def busy(self) -> bool:
        """Sequences are waiting or running."""
        ...

    def add(self, sequence: Sequence) -> None:
        """The sequence joins the batch at the next step."""

    def remove(self, sequence: Sequence) -> None:
        """The sequence leaves the batch now (ended early); a no-op for one the engine already let go."""

    def step(self, events: EngineEvents) -> None:
        """Advance the running sequences, reporting every new token through events."""

    def occupancy(self) -> Occupancy | None:
        """The engine's own view of its batch (called on the engine thread), None for an engine that
        keeps no queue or cache of its own."""

    def close(self) -> None:
        """Release what the engine holds outside this process's memory (a worker process); called
        once, when the scheduler shuts down."""


class EngineLost(Exception):
    """The engine can never step again (its worker process ended): the scheduler stops for good."""


@dataclass(frozen=True)
class Occupancy:
    running: int  # sequences the engine scheduled at its last step
    waiting: int  # sequences it holds but could not schedule (no room in the batch or the KV cache)
    kv_cache_usage: float  # fraction of the KV cache in use, 0 to 1


class EngineEvents(Protocol):
    def on_tokens(
        self, sequence: Sequence, token_ids: list[int], engine_done: bool, made_at: list[float] | None = None
    ) -> bool:
        """New tokens of a sequence (engine_done: the engine has let it go; made_at: the time.monotonic()
        of each step that gave them, for tokens reported steps later); True: stop generating it."""
        ...

    def on_failed(self, sequence: Sequence) -> None:
        """The engine could not generate this sequence."""

    @property
    def arrivals(self) -> int:
        """A file descriptor that is readable while sequences wait to join: an engine whose step
        waits on another process waits on this too, and returns early to let them join."""
        ...


class Scheduler:
    def __init__(self, engine: Engine, max_in_flight: int):
        self.engine = engine
        self.max_in_flight = max_in_flight
        self._inbox: list[Sequence] = []
        self._running: set[Sequence] = set()
        self._wake = threading.Condition()
        self._closed = False
        self._arrivals_out, self._arrivals_in = os.pipe()  # a byte per submission (EngineEvents.arrivals)
        for fd in (self._arrivals_out, self._arrivals_in):
            os.set_blocking(fd, False)
        self._arrivals_closed = False
        self.tokens_generated = 0  # every token the engine made (the gauges' tokens/s)
        self.occupancy_wanted = False  # the gauges ask; the engine thread answers at its next step (engine_occupancy)
        self.engine_occupancy: Occupancy | None = None
        self._thread = threading.Thread(target=self._run, name="engine-scheduler", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # stop the engine thread before interpreter teardown destroys the engine under it

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    @property
    def queued(self) -> int:
        """Sequences submitted that have not joined the engine's batch yet."""
        return len(self._inbox)

    @property
    def in_engine(self) -> int:
        """Sequences the engine holds (running, or waiting inside the engine)."""
        return len(self._running)

    def submit(self, group: SequenceGroup) -> None:
        with self._wake:
            if self._closed or not self._thread.is_alive():
                raise ModelNotReady("the engine is not running; retry shortly")
            in_flight = len(self._inbox) + len(self._running)
            if in_flight + len(group) > self.max_in_flight:
                raise Overloaded(
                    f"server busy: {in_flight} sequences in flight (limit {self.max_in_flight}); retry shortly",
                    retry_after=1,
                )
            self._inbox.extend(group.sequences)
            self._wake.notify()
            self._ring()

    def close(self) -> None:
        """Stop the engine thread; every request still in flight gets 503 (shutting down)."""
        with self._wake:
            if self._arrivals_closed:  # closed before
                return
            self._closed = True
            self._wake.notify()
            self._ring()  # an engine waiting on its worker returns
        self._thread.join(timeout=30)
        atexit.unregister(self.close)
        if not self._thread.is_alive():
            self._arrivals_closed = True
            os.close(self._arrivals_in)
            os.close(self._arrivals_out)

    def _run(self) -> None:
        try:
            while self._round():
                pass
        except EngineLost:  # the server stops being ready: requests get 503, the health probe fails
            logger.exception("the %s engine is lost", self.engine.name)
        self._shut_down()

    def _round(self) -> bool:
        """One loop of the engine thread (the module's docstring); False once closed."""
        with self._wake:
            while not (self._inbox or self.engine.busy or self._closed):
                self._wake.wait()
            if self._closed:
                return False
            joining, self._inbox = self._inbox, []
            self._drain_arrivals()
        for sequence in joining:
            self._join(sequence)
        for sequence in list(self._running):
            if why := sequence.group.stop_reason():
                self._leave(sequence, why)
        try:
            if self.engine.busy:  # every sequence may have left (ended, expired): an empty engine is never stepped
                self.engine.step(self)
        except EngineLost:
            raise
        except Exception:  # a server fault: fail the running requests, keep serving new ones
            logger.exception("the %s engine failed a step", self.engine.name)
            for sequence in list(self._running):
                self._leave(sequence, FAILED)
        for sequence in [s for s in self._running if s.done]:
            self._leave(sequence)
        if self.occupancy_wanted:  # read on this thread: the engine is not thread-safe
            self.occupancy_wanted, self.engine_occupancy = False, self.engine.occupancy()
        return True

    def _join(self, sequence: Sequence) -> None:
        if sequence.group.stop_reason():
            return
        self.engine.add(sequence)
        group = sequence.group
        if group.joined_at is None:
            group.joined_at, group.batch_at_join = time.monotonic(), len(self._running)
        with self._wake:
            self._running.add(sequence)

    def _leave(self, sequence: Sequence, why: str | None = None) -> None:
        self.engine.remove(sequence)
        if why is not None:
            sequence.group.end(why)
        with self._wake:
            self._running.discard(sequence)

    def _shut_down(self) -> None:
        with self._wake:
            self._closed = True  # a lost engine closes the scheduler too: nothing is submitted to it again
            abandoned = [*self._inbox, *self._running]
            self._inbox, self._running = [], set()
        for sequence in abandoned:
            self.engine.remove(sequence)
            sequence.group.end(SHUTDOWN)
        self.engine.close()

    def _ring(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: the engine thread has plenty to read already
            os.write(self._arrivals_in, b"\0")

    def _drain_arrivals(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._arrivals_out, 4096):
                pass

    # EngineEvents ---------------------------------------------------------------------------
    @property
    def arrivals(self) -> int:
        return self._arrivals_out

    def on_tokens(
        self, sequence: Sequence, token_ids: list[int], engine_done: bool, made_at: list[float] | None = None
    ) -> bool:
        if sequence.group.stop_reason() is not None:
            return True
        self.tokens_generated += len(token_ids)
        sequence.extend(token_ids, made_at)
        if engine_done and not sequence.done:
            sequence.finish("length")  # the engine let it go without our stopping object's word: it ran out
        return sequence.done

    def on_failed(self, sequence: Sequence) -> None:
        logger.error(
            "the %s engine could not generate sequence %d (%d prompt tokens)",
            self.engine.name,
            sequence.id,
            len(sequence.prompt_ids),
        )
        sequence.group.end(FAILED)

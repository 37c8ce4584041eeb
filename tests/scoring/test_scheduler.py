"""The engine thread with a scripted engine: joining between steps, leaving at once, bounds, deadlines, cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from distilgpt2_scoring.errors import ClientGone, DeadlineExceeded, EngineFailed, ModelNotReady, Overloaded
from distilgpt2_scoring.params import GenerationParams
from distilgpt2_scoring.scheduler import EngineLost, Scheduler
from distilgpt2_scoring.sequences import Sequence, SequenceGroup
from distilgpt2_scoring.stopping import Stopping

EOS = 0


class SteppedEngine:
    """A continuous-batching engine in miniature: each step gives every running sequence one token
    (its step count), once `gate` lets the step run. Records which sequences ran in each step."""

    name = "stepped"

    def __init__(self):
        self.running: list[Sequence] = []
        self.added: list[Sequence] = []
        self.steps: list[list[int]] = []
        self.gate = threading.Semaphore(0)
        self.fail_next = False
        self.closed = False

    @property
    def busy(self):
        return bool(self.running)

    def add(self, sequence):
        self.added.append(sequence)
        self.running.append(sequence)

    def remove(self, sequence):
        if sequence in self.running:
            self.running.remove(sequence)

    def step(self, events):
        assert self.gate.acquire(timeout=5), "the test never opened the gate"
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("engine fault")
        self.steps.append([s.id for s in self.running])
        for sequence in list(self.running):
            if events.on_tokens(sequence, [len(sequence.token_ids) + 1], False):
                self.running.remove(sequence)

    def close(self):
        self.closed = True

    def run_steps(self, count: int) -> None:
        for _ in range(count):
            self.gate.release()


def group(*max_new_tokens: int, deadline_s: float = 30.0, streaming: bool = False) -> SequenceGroup:
    sequences = [Sequence([5, 6], GenerationParams(max_new_tokens=n), Stopping(n, EOS)) for n in max_new_tokens]
    return SequenceGroup(sequences, time.monotonic() + deadline_s, streaming=streaming)


def counted_wakes(group: SequenceGroup) -> list[int]:
    """A one-item list counting how often the engine thread wakes the group's request thread."""
    wakes, notify_all = [0], group.changed.notify_all

    def counting():
        wakes[0] += 1
        notify_all()

    group.changed.notify_all = counting
    return wakes


def until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


@pytest.fixture
def engine():
    return SteppedEngine()


@pytest.fixture
def scheduler(engine):
    scheduler = Scheduler(engine, max_in_flight=4)
    yield scheduler
    engine.run_steps(100)
    scheduler.close()


def test_a_request_joins_the_running_batch_at_the_next_step_and_leaves_when_done(engine, scheduler):
    long = group(6)
    scheduler.submit(long)
    engine.run_steps(2)
    until(lambda: len(long.sequences[0].token_ids) == 2)
    short = group(2)
    scheduler.submit(short)  # the engine thread is inside step 3 already: it joins step 4
    engine.run_steps(3)
    short.wait()
    assert engine.steps[3] == [long.sequences[0].id, short.sequences[0].id]  # joined while the long one runs
    assert short.sequences[0].finish_reason == "length" and not long.finished  # answered before the long one ends
    engine.run_steps(1)
    long.wait()
    assert engine.steps[5] == [long.sequences[0].id] and long.sequences[0].token_ids == [1, 2, 3, 4, 5, 6]


def test_tokens_reach_the_request_as_they_are_made(engine, scheduler):
    streaming = group(3, streaming=True)
    scheduler.submit(streaming)
    updates = streaming.follow()
    engine.run_steps(1)
    first = next(updates)
    assert first.token_ids == [1] and first.finish_reason is None  # before the sequence is done
    engine.run_steps(2)
    rest = list(updates)
    assert [t for u in rest for t in u.token_ids] == [2, 3] and rest[-1].finish_reason == "length"


def test_a_whole_answer_wakes_its_request_once_when_done_a_stream_for_every_token(engine, scheduler):
    whole, streaming = group(3), group(3, streaming=True)
    whole_wakes, streaming_wakes = counted_wakes(whole), counted_wakes(streaming)
    scheduler.submit(whole)
    scheduler.submit(streaming)
    engine.run_steps(6)  # the two may join at different steps
    whole.wait()
    streaming.wait()
    assert whole_wakes == [1] and streaming_wakes == [3]


def test_too_many_sequences_in_flight_are_refused_at_once_with_retry_after(engine, scheduler):
    scheduler.submit(group(9, 9, 9))
    with pytest.raises(Overloaded) as caught:
        scheduler.submit(group(9, 9))
    assert caught.value.status == 429 and caught.value.headers() == {"Retry-After": "1"}
    scheduler.submit(group(9))  # what fits is still taken


def test_a_client_that_goes_away_is_dropped_and_frees_its_place(engine, scheduler):
    gone = group(9, 9, 9, 9)
    scheduler.submit(gone)
    engine.run_steps(1)
    with pytest.raises(ClientGone):
        gone.wait(client_gone=lambda: True)
    engine.run_steps(1)
    until(lambda: not engine.running)
    scheduler.submit(group(9, 9, 9, 9))  # accepted: the dropped sequences no longer count


def test_a_request_still_queued_at_its_deadline_is_never_generated(engine, scheduler):
    scheduler.submit(group(9))
    engine.run_steps(1)
    late = group(9, deadline_s=0.05)
    time.sleep(0.1)  # expires before the engine thread gets to it
    scheduler.submit(late)
    with pytest.raises(DeadlineExceeded) as caught:
        late.wait()
    engine.run_steps(1)
    until(lambda: len(engine.steps) == 2)
    assert late.sequences[0].id not in sum(engine.steps, []) and caught.value.status == 503
    assert caught.value.headers() == {"Retry-After": "1"}


def test_a_running_request_past_its_deadline_is_dropped_at_its_next_token(engine, scheduler):
    running = group(50, deadline_s=0.3)
    scheduler.submit(running)
    engine.run_steps(1)
    until(lambda: running.sequences[0].token_ids)
    with pytest.raises(DeadlineExceeded):
        running.wait()
    engine.run_steps(1)
    until(lambda: not engine.running)
    assert len(running.sequences[0].token_ids) == 1  # nothing more was generated for it


def test_a_failed_step_fails_its_requests_and_the_next_ones_are_served(engine, scheduler):
    broken = group(3)
    scheduler.submit(broken)
    engine.fail_next = True
    engine.run_steps(1)
    with pytest.raises(EngineFailed):
        broken.wait()
    served = group(2)
    scheduler.submit(served)
    engine.run_steps(2)
    served.wait()
    assert served.sequences[0].token_ids == [1, 2]


class EmptyStepsCounted(SteppedEngine):
    """Counts the steps it is given with nothing running (the transformers engine logs a failure for one)."""

    empty_steps = 0

    def step(self, events):
        self.empty_steps += not self.running
        super().step(events)


def test_an_empty_engine_is_never_stepped():
    engine = EmptyStepsCounted()
    scheduler = Scheduler(engine, max_in_flight=4)
    late = group(9, deadline_s=-1)  # expired when the engine thread takes it: it never joins
    scheduler.submit(late)
    with pytest.raises(DeadlineExceeded):
        late.wait()
    served = group(1)
    scheduler.submit(served)
    engine.run_steps(1)
    served.wait()
    scheduler.close()
    assert engine.empty_steps == 0 and engine.steps == [[served.sequences[0].id]]


def test_closing_answers_what_is_in_flight_with_503(engine):
    scheduler = Scheduler(engine, max_in_flight=4)
    waiting = group(9)
    scheduler.submit(waiting)
    until(lambda: engine.added)  # in the engine's batch, its step waiting for the gate
    closing = threading.Thread(target=scheduler.close)
    closing.start()
    until(lambda: not scheduler.alive)
    engine.run_steps(1)
    closing.join()
    with pytest.raises(ModelNotReady):
        waiting.wait()
    with pytest.raises(ModelNotReady):
        scheduler.submit(group(1))
    assert not scheduler.alive and engine.closed


class LostEngine(SteppedEngine):
    def step(self, events):
        raise EngineLost("the worker process ended (exit code -9)")


def test_a_lost_engine_answers_what_is_in_flight_with_503_and_the_scheduler_stops_for_good():
    engine = LostEngine()
    scheduler = Scheduler(engine, max_in_flight=4)
    waiting = group(9)
    scheduler.submit(waiting)
    with pytest.raises(ModelNotReady):
        waiting.wait()
    until(lambda: not scheduler.alive)  # the health probe answers 503 from now on
    with pytest.raises(ModelNotReady):
        scheduler.submit(group(1))
    assert engine.closed


def test_the_stopping_object_alone_names_the_finish_reason():
    stopping = Stopping(3, eos_token_id=0, stops=("cd",), decode=lambda ids: "".join("abcdef"[i] for i in ids))
    assert stopping([1]) is None and stopping([1, 0]) == "eos"
    assert stopping([1, 2, 3]) == "stop"  # "bcd" holds "cd"
    assert stopping([4, 4, 4]) == "length"


def test_only_a_streamed_or_stop_string_sequence_is_watched_as_it_grows():
    whole, streamed = group(4), group(4, streaming=True)
    stops = Sequence([5], GenerationParams(stop=("\n",)), Stopping(4, EOS, ("\n",), decode=str))
    SequenceGroup([stops], time.monotonic() + 30)
    assert [s.watched for s in (whole.sequences[0], streamed.sequences[0], stops)] == [False, True, True]


def test_tokens_reported_steps_after_they_were_made_keep_the_time_of_each_step():
    sequence = group(4).sequences[0]
    sequence.extend([7, 8, 9], made_at=[1.0, 2.0, 3.0])
    sequence.extend([10])  # reported by the step that made it: now
    assert sequence.token_times[:3] == [1.0, 2.0, 3.0] and sequence.token_times[3] > 3.0

"""Dynamic batching with a scripted engine: joining, per-request release, bounded queue, cancellation."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from distilgpt2_scoring.batcher import Batcher, ClientGone
from distilgpt2_scoring.connection import peer_closed
from distilgpt2_scoring.engines.base import Generation, Prompt
from distilgpt2_scoring.errors import Overloaded
from distilgpt2_scoring.params import GenerationParams


class GatedEngine:
    """Generates one token per prompt once `gate` is opened; records each batch's size."""

    name = "gated"

    def __init__(self):
        self.gate = threading.Event()
        self.batches: list[int] = []
        self.seconds_per_batch = 0.0

    def generate(self, batch, on_finished=None):
        self.batches.append(len(batch))
        self.gate.wait(5)
        time.sleep(self.seconds_per_batch)
        results = []
        for i, prompt in enumerate(batch):
            result = Generation([7], "stop" if prompt.should_stop([7]) else "length")
            if on_finished:
                on_finished(i, result)
            results.append(result)
        return results


def prompt() -> Prompt:
    return Prompt([1, 2], GenerationParams())


@pytest.fixture
def engine():
    return GatedEngine()


@pytest.fixture
def batcher(engine):
    batcher = Batcher(engine, max_batch_size=4, max_queue=5)
    yield batcher
    engine.gate.set()
    batcher.close()


def test_prompts_arriving_during_a_batch_join_the_next_one(engine, batcher):
    first = batcher.submit([prompt()])
    while not engine.batches:
        threading.Event().wait(0.01)
    later = [batcher.submit([prompt(), prompt()]), batcher.submit([prompt(), prompt(), prompt()])]
    engine.gate.set()
    assert [g.token_ids for g in first.wait()] == [[7]]
    assert [len(t.wait()) for t in later] == [2, 3]
    assert engine.batches[:2] == [1, 4]  # 5 waiting prompts -> a batch of max_batch_size, then the rest


def test_clients_answered_together_come_back_into_one_batch(engine):
    engine.seconds_per_batch = 1.0  # the wait is at most 5% of a batch's duration: 50 ms here
    batcher = Batcher(engine, max_batch_size=4, max_queue=5, batch_wait_s=0.5)
    try:
        first = batcher.submit([prompt()])
        while not engine.batches:
            threading.Event().wait(0.01)
        waiting = batcher.submit([prompt()])
        engine.gate.set()
        first.wait()
        pair = [waiting, batcher.submit([prompt()])]  # batch 2: the one waiting and the answered client's next
        [ticket.wait() for ticket in pair]
        early = batcher.submit([prompt()])  # the queue was empty when batch 2 ended
        threading.Event().wait(0.01)
        late = batcher.submit([prompt()])
        early.wait(), late.wait()
        assert engine.batches == [1, 2, 2]
    finally:
        batcher.close()


@pytest.fixture
def patient_batcher(engine):
    """A batcher willing to wait 5 s for returning clients, over an engine that answers at once."""
    engine.gate.set()
    batcher = Batcher(engine, max_batch_size=4, max_queue=5, batch_wait_s=5)
    yield batcher
    batcher.close()


def test_a_short_batch_waits_only_a_small_share_of_its_own_duration(patient_batcher):
    pair = [patient_batcher.submit([prompt()]), patient_batcher.submit([prompt()])]
    [ticket.wait() for ticket in pair]
    started = time.monotonic()
    patient_batcher.submit([prompt()]).wait()  # its partner never comes back
    assert time.monotonic() - started < 1


def test_an_idle_server_starts_a_lone_request_at_once(engine, patient_batcher):
    started = time.monotonic()
    patient_batcher.submit([prompt()]).wait()
    assert time.monotonic() - started < 1 and engine.batches == [1]


def test_a_full_queue_refuses_at_once_with_retry_after(engine, batcher):
    batcher.submit([prompt()])
    while not engine.batches:
        threading.Event().wait(0.01)
    batcher.submit([prompt()] * 5)  # the queue holds 5
    with pytest.raises(Overloaded) as caught:
        batcher.submit([prompt()])
    assert caught.value.status == 429 and caught.value.headers() == {"Retry-After": "1"}


def test_a_client_that_goes_away_frees_its_slots(engine, batcher):
    batcher.submit([prompt()])
    while not engine.batches:
        threading.Event().wait(0.01)
    waiting = batcher.submit([prompt()] * 5)
    with pytest.raises(ClientGone):
        waiting.wait(client_gone=lambda: True)
    assert waiting.cancelled
    batcher.submit([prompt()] * 5)  # accepted: the cancelled prompts no longer count once dropped
    engine.gate.set()


def test_a_cancelled_prompt_stops_at_its_next_token(engine, batcher):
    running = batcher.submit([prompt()])
    while not engine.batches:
        threading.Event().wait(0.01)
    running.cancel()
    engine.gate.set()
    assert [g.finish_reason for g in running.wait()] == ["stop"]  # its should_stop said so


def test_peer_closed_tells_a_hung_up_client_from_a_quiet_one():
    ours, theirs = socket.socketpair()
    assert not peer_closed(ours)
    theirs.close()
    assert peer_closed(ours)
    ours.close()

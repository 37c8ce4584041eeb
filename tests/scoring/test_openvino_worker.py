"""The OpenVINO pipeline runs in a process of its own (its step holds the GIL for the whole step):
the server's process only sends it sequences and reads back their tokens."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from openvino_genai import GenerationStatus

from distilgpt2_scoring.engines import openvino_worker
from distilgpt2_scoring.engines.openvino import OpenVINOEngine
from distilgpt2_scoring.engines.openvino_worker import QUIET_STEPS, WATCHED_INTERVAL_S, Worker
from distilgpt2_scoring.errors import ModelNotReady
from distilgpt2_scoring.hardware import decide
from distilgpt2_scoring.params import GenerationParams
from distilgpt2_scoring.settings import ServingSettings
from distilgpt2_scoring.tasks import load_service

from .test_scheduler import until

GREEDY = {"do_sample": False, "return_full_text": False}


@pytest.fixture
def own_service(tiny_mlflow_model, engine_cache):
    """A service of its own: these tests end its worker."""
    service = load_service(tiny_mlflow_model, ServingSettings(engine="openvino", cache_dir=engine_cache))
    yield service
    service.close()


# Run in a fresh interpreter: this test session itself loads openvino elsewhere.
SERVERS_PROCESS = """
import os, sys
from pathlib import Path
from distilgpt2_scoring.settings import ServingSettings
from distilgpt2_scoring.tasks import load_service
service = load_service(Path(sys.argv[1]), ServingSettings(engine="openvino", cache_dir=Path(sys.argv[2])))
params = {"do_sample": False, "return_full_text": False, "max_new_tokens": 5}
[text] = service.predict({"input_data": ["I believe the meaning of life is"], "params": params})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("openvino", "openvino_genai"))
print(service.engine.process.pid != os.getpid(), text, loaded)
service.close()
"""


def test_the_pipeline_runs_in_another_process_and_the_servers_process_never_loads_openvino(tiny_mlflow_model, tmp_path):
    command = [sys.executable, "-c", SERVERS_PROCESS, str(tiny_mlflow_model), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "to", "learn", "something", "new", "every", "[]"]


def test_closing_the_service_ends_its_worker(own_service):
    worker = own_service.engine.process
    assert worker.poll() is None and worker.pid != os.getpid()
    own_service.close()
    assert worker.returncode == 0


def test_a_worker_that_dies_answers_what_is_in_flight_with_503_and_the_server_stops_being_ready(own_service):
    caught = []

    def long_request():
        try:
            own_service.predict({"input_data": ["I believe"], "params": GREEDY | {"max_new_tokens": 1000 - 3}})
        except ModelNotReady as error:
            caught.append(error)

    running = threading.Thread(target=long_request)
    running.start()
    until(lambda: own_service.scheduler.in_engine)
    os.kill(own_service.engine.process.pid, signal.SIGKILL)
    running.join(timeout=30)
    assert [e.status for e in caught] == [503]
    until(lambda: not own_service.ready)  # the health probe answers 503: the platform restarts the container
    with pytest.raises(ModelNotReady):
        own_service.predict({"input_data": ["I believe"], "params": GREEDY | {"max_new_tokens": 2}})


def test_a_worker_that_died_while_idle_answers_the_next_request_with_503(own_service):
    worker = own_service.engine.process
    worker.kill()
    worker.wait(timeout=30)
    caught = []

    def request():
        try:
            own_service.predict({"input_data": ["I believe"], "params": GREEDY | {"max_new_tokens": 5}})
        except ModelNotReady as error:
            caught.append(error)

    sent = threading.Thread(target=request)
    sent.start()
    sent.join(timeout=30)  # not left waiting for its deadline
    assert not sent.is_alive() and [e.status for e in caught] == [503]
    until(lambda: not own_service.ready)


def test_a_pipeline_that_cannot_be_built_fails_the_start_with_the_workers_reason(tmp_path):
    config = decide(ServingSettings(engine="openvino", cache_dir=tmp_path))
    with pytest.raises(RuntimeError, match="the OpenVINO pipeline could not be built") as caught:
        OpenVINOEngine.start(tmp_path / "no-model-here", config, 50257, 50256)
    assert "no-model-here" in str(caught.value)


def test_the_worker_ends_when_the_servers_end_of_the_pipe_closes(tiny_mlflow_model, engine_cache):
    # The server's process killed outright leaves no one to close the worker: the closed pipe ends it.
    service = load_service(tiny_mlflow_model, ServingSettings(engine="openvino", cache_dir=engine_cache))
    worker = service.engine.process
    service.engine.connection.close()
    assert worker.wait(timeout=30) == 0
    service.close()


# What the worker reports, and when ----------------------------------------------------------------


class Handle:
    """A GenerationHandle of OneTokenPerStep's."""

    def __init__(self, sequence_id: int, length: int):
        self.id, self.left, self.fresh = sequence_id, length, []

    def get_status(self):
        return GenerationStatus.RUNNING if self.left else GenerationStatus.FINISHED

    def can_read(self) -> bool:
        return bool(self.fresh)

    def read(self):
        tokens, self.fresh = self.fresh, []
        return [SimpleNamespace(generated_ids=tokens)]

    def cancel(self) -> None:
        self.left = 0


class OneTokenPerStep:
    """A pipeline whose every sequence gains a token (its own id) per step until max_new_tokens."""

    def __init__(self):
        self.handles: list[Handle] = []

    def add_request(self, sequence_id, ids, config) -> Handle:
        self.handles.append(Handle(sequence_id, config.max_new_tokens))
        return self.handles[-1]

    def step(self):
        for handle in self.handles:
            if handle.left:
                handle.fresh.append(handle.id)
                handle.left -= 1

    def get_metrics(self):
        return SimpleNamespace(scheduled_requests=1, requests=1, cache_usage=0.0)


def worker_with(*sequences: tuple[int, int, bool]) -> Worker:
    """A worker holding (id, max_new_tokens, watched) sequences, added as the server adds them."""
    worker = Worker(OneTokenPerStep(), vocab_size=50257, eos_token_id=50256)
    for sequence_id, length, watched in sequences:
        worker.apply(("add", sequence_id, [1, 2], GenerationParams(max_new_tokens=length), None, watched))
    return worker


STEP_S = 1 / 256  # a step's seconds on the worker's clock below (exact in binary: no rounding at a boundary)


@pytest.fixture
def steady_steps(monkeypatch):
    """The worker's clock: each step ends STEP_S after the one before."""
    clock = (STEP_S * n for n in range(1, 1000))
    monkeypatch.setattr(openvino_worker.time, "monotonic", lambda: next(clock))


def reported_steps(worker: Worker, steps: int) -> list[tuple[int, list]]:
    """(step number, its report's (id, tokens, times, state) entries) of each step that sent one."""
    return [(n, report[1]) for n in range(1, steps + 1) if (report := worker.step()) is not None]


def test_a_sequence_read_whole_is_reported_every_quiet_steps_and_when_it_ends(steady_steps):
    sent = reported_steps(worker_with((1, QUIET_STEPS + 3, False)), QUIET_STEPS + 3)
    assert [n for n, _ in sent] == [QUIET_STEPS, QUIET_STEPS + 3]
    (_, [(_, tokens, made_at, state)]), (_, [(_, rest, _, last)]) = sent
    assert (tokens, state, last, rest) == ([1] * QUIET_STEPS, "running", "done", [1] * 3)
    assert made_at == [STEP_S * n for n in range(1, QUIET_STEPS + 1)]  # the time of each step that gave a token


def test_a_watched_sequence_gets_its_first_token_at_once_then_its_tokens_every_interval(steady_steps):
    every = math.ceil(WATCHED_INTERVAL_S / STEP_S)  # steps
    sent = reported_steps(worker_with((1, 40, False), (2, 40, True)), 2 * every + 1)
    assert [n for n, _ in sent] == [1, 1 + every, 1 + 2 * every]
    assert [(i, tokens) for i, tokens, _, _ in sent[1][1]] == [(1, [1] * every), (2, [2] * every)]  # both go


def test_a_sequence_the_server_removed_is_not_reported(steady_steps):
    worker = worker_with((1, 10, False), (2, 3, False))
    worker.step()
    worker.apply(("remove", 1))
    worker.step()
    assert [(i, tokens, state) for i, tokens, _, state in worker.step()[1]] == [(2, [2, 2, 2], "done")]

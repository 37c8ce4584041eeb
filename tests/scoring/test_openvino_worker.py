"""The OpenVINO pipeline runs in a process of its own (its step holds the GIL for the whole step):
the server's process only sends it sequences and reads back their tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from distilgpt2_scoring.engines.openvino import OpenVINOEngine
from distilgpt2_scoring.errors import ModelNotReady
from distilgpt2_scoring.hardware import decide
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

"""score.py in-process, with werkzeug requests: the answers that need no model."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from distilgpt2_asset.paths import scoring_dir
from distilgpt2_scoring.settings import ServingSettings


@pytest.fixture
def score():
    spec = importlib.util.spec_from_file_location("score_under_test", scoring_dir() / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def request(method="POST", body=b"{}", content_length: int | None = None) -> Request:
    environ = EnvironBuilder(method=method, data=body).get_environ()
    if content_length is not None:  # what the client claims, whatever it sends
        environ["CONTENT_LENGTH"] = str(content_length)
    return Request(environ)


def answer(response):
    return response.status_code, json.loads(response.get_data())


def test_before_init_a_request_gets_503_with_retry_after(score):
    response = score.run(request())
    assert answer(response)[0] == 503 and response.headers["Retry-After"] == "5"


class Ready:
    """A service stand-in: ready, with the default settings; predict() must not be reached unless set."""

    ready = True
    settings = ServingSettings.model_construct()

    def predict(self, payload, client_gone=None):
        raise AssertionError("never reached")


def test_a_declared_oversized_body_is_refused_before_it_is_read(score, monkeypatch):
    monkeypatch.setattr(score, "service", Ready())
    huge = request(body=b"", content_length=Ready.settings.max_body_bytes + 1)
    response = score.run(huge)
    status, body = answer(response)
    assert status == 413 and body["field"] == "body" and response.headers["Connection"] == "close"


def test_a_service_whose_engine_stopped_answers_503(score, monkeypatch):
    stopped = Ready()
    stopped.ready = False
    monkeypatch.setattr(score, "service", stopped)
    response = score.run(request(body=b'{"input_data": ["a"]}'))
    assert answer(response)[0] == 503 and response.headers["Retry-After"] == "5"


def test_a_streamed_answer_is_a_server_sent_event_stream(score, monkeypatch):
    class Streaming(Ready):
        def predict(self, payload, client_gone=None):
            yield "data: {}\n\n"
            yield "data: [DONE]\n\n"

    monkeypatch.setattr(score, "service", Streaming())
    response = score.run(request(body=b'{"input_data": ["a"], "params": {"stream": true}}'))
    assert response.status_code == 200 and response.mimetype == "text/event-stream" and response.is_streamed
    assert response.headers["Cache-Control"] == "no-cache"
    assert b"".join(response.iter_encoded()) == b"data: {}\n\ndata: [DONE]\n\n"


def test_other_methods_get_405(score):
    assert answer(score.run(request(method="PUT")))[0] == 405


def test_an_unexpected_failure_is_a_generic_500_without_details(score, monkeypatch):
    class Broken(Ready):
        def predict(self, payload, client_gone=None):
            raise RuntimeError("secret internals")

    monkeypatch.setattr(score, "service", Broken())
    status, body = answer(score.run(request(body=b'{"input_data": ["a"]}')))
    assert status == 500 and "secret" not in json.dumps(body) and body["error_type"] == "internal"


def test_init_without_a_model_dir_says_so(score, monkeypatch):
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    with pytest.raises(RuntimeError, match="AZUREML_MODEL_DIR is not set"):
        score.init()


LIVENESS = """
import json, os, sys
sys.argv = ["azmlinfsrv"]
from azureml_inference_server_http.server.create_app import create
app = create()  # loads score.py and runs init(), as azmlinfsrv's worker does
client = app.test_client()
before = client.get("/")
score = app.azml_blueprint.user_script._user_init.__globals__  # score.py's module namespace
score["service"].scheduler.close()  # the engine thread is gone
after = client.get("/")
with open("probes.json", "w") as out:  # azmlinfsrv turns print() into log lines
    json.dump([before.status_code, before.get_data(as_text=True), after.status_code, after.get_json()], out)
"""


def test_the_health_probe_fails_once_the_engine_thread_is_gone(tiny_mlflow_model, engine_cache, tmp_path):
    env = dict(
        os.environ,
        AZUREML_ENTRY_SCRIPT=str(scoring_dir() / "score.py"),
        AZUREML_MODEL_DIR=str(tiny_mlflow_model),
        AML_APP_ROOT=str(scoring_dir()),
        TEXTGEN_CACHE_DIR=str(engine_cache),
    )
    done = subprocess.run(
        [sys.executable, "-c", LIVENESS], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    before_status, before_text, after_status, after_body = json.loads((tmp_path / "probes.json").read_text())
    assert (before_status, before_text) == (200, "Healthy")
    assert after_status == 503 and after_body["error_type"] == "unhealthy"

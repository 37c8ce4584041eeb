"""score.py in-process, with werkzeug requests: the answers that need no model."""

from __future__ import annotations

import importlib.util
import json

import pytest
from flask import Request
from werkzeug.test import EnvironBuilder

from distilgpt2_asset.paths import scoring_dir


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


def test_a_declared_oversized_body_is_refused_before_it_is_read(score, monkeypatch):
    monkeypatch.setattr(score, "service", object())  # never reached
    huge = request(body=b"", content_length=score.settings.max_body_bytes + 1)
    status, body = answer(score.run(huge))
    assert status == 413 and body["field"] == "body"


def test_other_methods_get_405(score):
    assert answer(score.run(request(method="PUT")))[0] == 405


def test_an_unexpected_failure_is_a_generic_500_without_details(score, monkeypatch):
    class Broken:
        def predict(self, payload):
            raise RuntimeError("secret internals")

    monkeypatch.setattr(score, "service", Broken())
    status, body = answer(score.run(request(body=b'{"input_data": ["a"]}')))
    assert status == 500 and "secret" not in json.dumps(body) and body["error_type"] == "internal"


def test_init_without_a_model_dir_says_so(score, monkeypatch):
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    with pytest.raises(RuntimeError, match="AZUREML_MODEL_DIR is not set"):
        score.init()

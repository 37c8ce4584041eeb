"""The data collector exporter, as far as it runs without Azure: azureml-ai-monitoring's Collector
posts to a model data collector on 127.0.0.1 standing in for Azure's, and what it sends is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from distilgpt2_scoring.observability.collector import columns
from distilgpt2_scoring.observability.record import RequestRecord


def test_a_request_without_an_answer_sends_nothing():
    assert columns(RequestRecord(status=503)) is None


def test_inputs_and_outputs_reach_the_collector_with_the_request_id_as_correlation_id():
    scenario = Path(__file__).with_name("collector_scenario.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(scenario), "req-42"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    sent = {r["headers"]["ce-type"]: r for r in json.loads(done.stdout.splitlines()[-1])}
    assert set(sent) == {"azureml.inference.model_inputs", "azureml.inference.model_outputs"}
    inputs, outputs = sent["azureml.inference.model_inputs"], sent["azureml.inference.model_outputs"]
    assert inputs["path"] == "/modeldata/log"
    assert inputs["headers"]["ce-x-request-id"] == outputs["headers"]["ce-x-request-id"] == "req-42"
    [row] = inputs["body"]
    assert row["prompt"] == "Hello" and json.loads(row["params"])["max_new_tokens"] == 3
    assert outputs["body"] == [
        {"generated_text": " world, again", "finish_reason": "length", "prompt_tokens": 1, "completion_tokens": 3}
    ]

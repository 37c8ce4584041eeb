"""The data collector exporter, as far as it runs without Azure: azureml-ai-monitoring's Collector
posts to a model data collector on 127.0.0.1 standing in for Azure's, and what it sends is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


class Collection:
    """Stands in for azureml-ai-monitoring's Collector of one collection: keeps what it is given."""

    def __init__(self):
        self.rows: list[tuple[str | None, list[dict]]] = []

    def collect(self, table, context):
        self.rows.append((context.id, table.to_dict("records")))
        return context


def answered(request_id: str) -> RequestRecord:
    from types import SimpleNamespace

    from distilgpt2_scoring.params import GenerationParams

    record = RequestRecord(request_id=request_id, status=200)
    record.request = SimpleNamespace(params=GenerationParams(max_new_tokens=3), prompts=("Hello",), samples=1)
    record.group = SimpleNamespace(sequences=[SimpleNamespace(finish_reason="length", prompt_ids=[1], token_ids=[2])])
    record.prompt_text, record.completion_text = ["Hello"], [" world"]
    return record


def test_a_sampled_request_sends_both_its_input_and_its_output_and_an_unsampled_one_neither():
    from distilgpt2_scoring.observability.collector import INPUTS, OUTPUTS, DataCollectorExporter

    collections = {INPUTS: Collection(), OUTPUTS: Collection()}
    draws = iter([0.05, 0.5, 0.09, 0.1])  # against a rate of 0.1: sent, not, sent, not
    exporter = DataCollectorExporter(collections, rate=0.1, draw=lambda: next(draws))
    for request_id in ("r1", "r2", "r3", "r4"):
        exporter.on_request(answered(request_id))
    exporter.close()
    assert [request_id for request_id, _ in collections[INPUTS].rows] == ["r1", "r3"]
    assert [request_id for request_id, _ in collections[OUTPUTS].rows] == ["r1", "r3"]


@pytest.mark.parametrize("rate", ["0", "1.5"])
def test_a_collection_rate_outside_0_to_1_stops_the_server_at_start_up(rate, monkeypatch):
    from pydantic import ValidationError

    from distilgpt2_scoring.settings import ServingSettings

    monkeypatch.setenv("TEXTGEN_COLLECT_DATA_RATE", rate)
    with pytest.raises(ValidationError, match="collect_data_rate"):
        ServingSettings()

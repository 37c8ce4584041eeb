"""score.py in-process on the session's OpenVINO service, with every exporter the tests can read:
the log line (caplog), Prometheus (its /metrics on 127.0.0.1) and OpenTelemetry (an in-memory reader)."""

from __future__ import annotations

import importlib
import json

import pytest
from flask import Request
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from werkzeug.test import EnvironBuilder

from distilgpt2_asset.paths import scoring_dir
from distilgpt2_asset.serve import free_port
from distilgpt2_scoring.observability import Observability
from distilgpt2_scoring.observability.log import LogExporter
from distilgpt2_scoring.observability.otel import OpenTelemetryExporter
from distilgpt2_scoring.observability.prometheus import PrometheusExporter


class Observed:
    """score.run with the exporters attached; post() sends one request and reads its whole answer."""

    def __init__(self, score, service):
        self.score = score
        self.service = service
        self.prometheus = PrometheusExporter("distilgpt2")
        self.metrics_port = free_port()
        self.prometheus.serve("127.0.0.1", self.metrics_port)
        self.otel_reader = InMemoryMetricReader()
        self.otel = OpenTelemetryExporter("distilgpt2", self.otel_reader)
        exporters = [LogExporter(log_text=False), self.prometheus, self.otel]
        self.observability = Observability(exporters, service.engine.name, scheduler=service.scheduler)

    def post(self, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = self.score.run(
            Request(EnvironBuilder(method="POST", data=data, headers=headers or {}).get_environ())
        )
        content = b"".join(response.iter_encoded())
        response.close()
        return response.status_code, content


@pytest.fixture
def observed(openvino_service, monkeypatch):
    monkeypatch.syspath_prepend(str(scoring_dir()))
    score = importlib.import_module("score")  # the entry script azmlinfsrv loads; its globals are patched below
    observed = Observed(score, openvino_service)
    monkeypatch.setattr(score, "service", openvino_service)
    monkeypatch.setattr(score, "observability", observed.observability)
    yield observed
    observed.observability.close()

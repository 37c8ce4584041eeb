"""Prometheus metrics (prometheus-client): metrics.py's, named `textgen:` + vLLM's name (a vLLM
dashboard works after that one substitution), on a port of their own (TEXTGEN_METRICS_PORT,
`serve --metrics-port`) bound to TEXTGEN_METRICS_HOST: 127.0.0.1 unless a Kubernetes online
endpoint's scraper must reach it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server

from .metrics import METRICS, Figure, FigureExporter

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

PREFIX = "textgen:"


def _instrument(metric, registry):
    labels = ["model_name", *metric.labels]
    name, doc = PREFIX + metric.name, metric.doc
    if metric.kind == "histogram":
        return Histogram(name, doc, labels, registry=registry, buckets=metric.buckets)
    return (Counter if metric.kind == "counter" else Gauge)(name, doc, labels, registry=registry)


class PrometheusExporter(FigureExporter):
    def __init__(self, model_name: str, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.model_name = model_name
        self.instruments = {name: _instrument(metric, self.registry) for name, metric in METRICS.items()}
        self._server: WSGIServer | None = None

    def serve(self, host: str, port: int) -> None:
        """GET /metrics on host:port (a thread of prometheus-client's)."""
        ProcessCollector(registry=self.registry)  # the server's memory and CPU beside the engine's figures
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)

    def _apply(self, figure: Figure) -> None:
        name, value, labels = figure
        instrument = self.instruments[name].labels(model_name=self.model_name, **labels)
        kind = METRICS[name].kind
        if kind == "histogram":
            instrument.observe(value)
        elif kind == "counter":
            instrument.inc(value)
        else:
            instrument.set(value)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

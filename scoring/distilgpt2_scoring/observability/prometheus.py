"""Prometheus metrics (prometheus-client): metrics.py's, named `textgen:` + vLLM's name (a vLLM
dashboard works after that one substitution), on a port of their own (TEXTGEN_METRICS_PORT,
`serve --metrics-port`) bound to TEXTGEN_METRICS_HOST: 127.0.0.1 unless a Kubernetes online
endpoint's scraper must reach it.

Every metric's call is looked up once (the label-less ones' child included), and a per-token metric
takes a request's values in one call (BatchedHistogram): a request costs a handful of calls, not one
per token.
"""

from __future__ import annotations

import itertools
import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .metrics import METRICS, FigureExporter, Metric

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

PREFIX = "textgen:"
_UPDATE = {"histogram": "observe", "counter": "inc", "gauge": "set"}


class BatchedHistogram(Collector):
    """A histogram of one label set that takes many values in one call (observe_all): the buckets,
    count and sum a Histogram would expose after an observe() per value (the sum added one value at
    a time, as observe() adds), without its _created sample. A custom collector of prometheus-client's."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], labels: dict[str, str], registry
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.upper_bounds = [*map(float, buckets), math.inf]
        self._le = [floatToGoString(bound) for bound in self.upper_bounds]
        self._counts = [0] * len(self.upper_bounds)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_all(self, values: Iterable[float]) -> None:
        bounds, counts = self.upper_bounds, self._counts
        with self._lock:
            total = self._sum
            for value in values:
                counts[bisect_left(bounds, value)] += 1  # the first bucket whose bound is >= value
                total += value
            self._sum = total

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))
        cumulative = itertools.accumulate(map(float, counts))
        family.add_metric(list(self.labels.values()), list(zip(self._le, cumulative, strict=True)), total)
        yield family


class PrometheusExporter(FigureExporter):
    def __init__(self, model_name: str, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.model_name = model_name
        self.recorders = {name: self._recorder(metric) for name, metric in METRICS.items()}
        self._server: WSGIServer | None = None

    def _recorder(self, metric: Metric) -> Callable[[Any, dict[str, str]], None]:
        name, doc = PREFIX + metric.name, metric.doc
        if metric.per_token:
            batched = BatchedHistogram(name, doc, metric.buckets, {"model_name": self.model_name}, self.registry)
            return lambda values, labels: batched.observe_all(values)
        labelnames = ["model_name", *metric.labels]
        instrument: Histogram | Counter | Gauge
        if metric.kind == "histogram":
            instrument = Histogram(name, doc, labelnames, registry=self.registry, buckets=metric.buckets)
        else:
            instrument = (Counter if metric.kind == "counter" else Gauge)(name, doc, labelnames, registry=self.registry)
        update = _UPDATE[metric.kind]
        if not metric.labels:
            child_update = getattr(instrument.labels(self.model_name), update)
            return lambda value, labels: child_update(value)
        return lambda value, labels: getattr(instrument.labels(model_name=self.model_name, **labels), update)(value)

    def serve(self, host: str, port: int) -> None:
        """GET /metrics on host:port (a thread of prometheus-client's)."""
        ProcessCollector(registry=self.registry)  # the server's memory and CPU beside the engine's figures
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

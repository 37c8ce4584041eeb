"""The metrics, declared once: names and labels as vLLM's (`vllm:` becomes `textgen:` in Prometheus,
`textgen.` in OpenTelemetry), and the figures a finished request and a gauge sample give them.

A "request" in vLLM's counters is one sequence (vLLM runs each prompt and each of n samples as a
request of its own): request_success counts sequences by finish reason, as vLLM's does.

Inter-token latency comes twice, as in vLLM: inter_token_latency_seconds takes every gap between two
tokens (per_token: Prometheus only, a request's gaps as one batch), and
request_time_per_output_token_seconds each request's mean gap (both exporters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from .gauges import EngineGauges
from .record import RequestRecord

# vLLM's buckets (vllm/v1/metrics/loggers.py)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
               80.0)  # fmt: skip
LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
                   480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


@dataclass(frozen=True)
class Metric:
    name: str  # Prometheus adds _total to a counter's
    kind: Literal["histogram", "counter", "gauge"]
    doc: str
    labels: tuple[str, ...] = ()  # besides model_name, which every metric has
    buckets: tuple[float, ...] = ()
    unit: str = ""
    # One value per generated token (~100 a request), handed over as one batch per request. Prometheus
    # only: it adds a batch to its bucket counts at once, while OpenTelemetry's SDK would pay ~12 us
    # per value and Application Insights keeps a histogram as count/sum/min/max a minute anyway, so
    # the request's mean (request_time_per_output_token_seconds) says as much there.
    per_token: bool = False


METRICS = {
    m.name: m
    for m in (
        Metric("time_to_first_token_seconds", "histogram", "Arrival to the first token.", (), TTFT_BUCKETS, "s"),
        Metric("inter_token_latency_seconds", "histogram", "Between two tokens of a sequence.", (), ITL_BUCKETS, "s",
               per_token=True),
        Metric("request_time_per_output_token_seconds", "histogram", "A request's mean time between two tokens.", (),
               ITL_BUCKETS, "s"),
        Metric("e2e_request_latency_seconds", "histogram", "Arrival to the answer complete.", (), LATENCY_BUCKETS, "s"),
        Metric("request_queue_time_seconds", "histogram", "Submitted to joining the batch.", (), LATENCY_BUCKETS, "s"),
        Metric("prompt_tokens", "counter", "Prompt tokens of the requests generated for."),
        Metric("generation_tokens", "counter", "Tokens generated."),
        Metric("request_success", "counter", "Sequences finished, by reason.", ("finished_reason",)),
        Metric("request_errors", "counter", "Error answers, by status and type.", ("status", "error_type")),
        Metric("request_refusals", "counter", "Requests refused for want of capacity or time, by cause.", ("cause",)),
        Metric("num_requests_running", "gauge", "Sequences in the engine's batch."),
        Metric("num_requests_waiting", "gauge", "Sequences waiting for a place in the batch."),
        Metric("kv_cache_usage_perc", "gauge", "Fraction of the KV cache in use (1 = full)."),
        Metric("generation_tokens_per_second", "gauge", "Tokens generated per second over the last window."),
    )
}  # fmt: skip

Figure = tuple[str, float | Iterable[float], dict[str, str]]  # metric name, value (per_token: values), labels


def request_figures(record: RequestRecord) -> Iterator[Figure]:
    assert record.total_s is not None, "a record is exported once finished (RequestRecord.finish)"
    yield "e2e_request_latency_seconds", record.total_s, {}
    if record.status is not None and record.status >= 400:
        yield "request_errors", 1, {"status": str(record.status), "error_type": record.error_type or "unknown"}
    if record.refusal is not None:
        yield "request_refusals", 1, {"cause": record.refusal}
    if record.group is None:
        return
    yield "prompt_tokens", record.prompt_tokens, {}
    yield "generation_tokens", record.completion_tokens, {}
    for reason, count in record.finish_reasons.items():
        yield "request_success", count, {"finished_reason": reason}
    if record.queue_wait_s is not None:
        yield "request_queue_time_seconds", record.queue_wait_s, {}
    if record.time_to_first_token_s is not None:
        yield "time_to_first_token_seconds", record.time_to_first_token_s, {}
    if record.time_per_output_token_s is not None:
        yield "request_time_per_output_token_seconds", record.time_per_output_token_s, {}
    yield "inter_token_latency_seconds", record.inter_token_gaps(), {}  # computed only if an exporter takes it


def gauge_figures(gauges: EngineGauges) -> Iterator[Figure]:
    yield "num_requests_running", gauges.running, {}
    yield "num_requests_waiting", gauges.waiting, {}
    yield "generation_tokens_per_second", gauges.tokens_per_s, {}
    if gauges.kv_cache_usage is not None:
        yield "kv_cache_usage_perc", gauges.kv_cache_usage, {}


class FigureExporter:
    """An exporter of these metrics: subclasses keep, for each metric they export, the call that takes
    a figure's value and labels (`recorders`); the figures of other metrics are passed over."""

    recorders: dict[str, Callable[[Any, dict[str, str]], None]]

    def on_request(self, record: RequestRecord) -> None:
        self._apply(request_figures(record))

    def on_gauges(self, gauges: EngineGauges) -> None:
        self._apply(gauge_figures(gauges))

    def _apply(self, figures: Iterator[Figure]) -> None:
        recorders = self.recorders
        for name, value, labels in figures:
            if (record := recorders.get(name)) is not None:
                record(value, labels)

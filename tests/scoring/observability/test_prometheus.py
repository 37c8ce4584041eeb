"""Prometheus: a request's inter-token gaps go into their histogram as one batch, exposed exactly as
prometheus-client's Histogram would after an observe() per gap; a request's figures reach /metrics."""

from __future__ import annotations

import random
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from distilgpt2_scoring.observability.metrics import ITL_BUCKETS
from distilgpt2_scoring.observability.prometheus import BatchedHistogram, PrometheusExporter
from distilgpt2_scoring.observability.record import RequestRecord

NAME = "textgen:inter_token_latency_seconds"


def exposition(registry: CollectorRegistry) -> list[str]:
    """The scrape's lines, without _created (a Histogram's creation time)."""
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


def test_a_batch_is_exposed_as_a_histogram_observing_each_value():
    rng = random.Random(29)
    batches = [
        [rng.uniform(0.0, 0.3) for _ in range(99)],
        [0.01, 0.025, 0.0, 80.0, 80.5, 1e-9],  # on a bucket's bound, zero, past the last bound
        [],
        [rng.expovariate(20.0) for _ in range(250)],
    ]
    plain_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    plain = Histogram(NAME, "Between two tokens.", ["model_name"], registry=plain_registry, buckets=ITL_BUCKETS)
    batched = BatchedHistogram(NAME, "Between two tokens.", ITL_BUCKETS, {"model_name": "distilgpt2"}, batched_registry)
    for batch in batches:
        for gap in batch:
            plain.labels("distilgpt2").observe(gap)
        batched.observe_all(iter(batch))
        assert exposition(batched_registry) == exposition(plain_registry)
    assert f'{NAME}_count{{model_name="distilgpt2"}} 355.0' in exposition(batched_registry)


def test_a_request_gives_every_gap_and_its_mean_gap():
    sequences = [
        SimpleNamespace(prompt_ids=[1], token_ids=[2, 3, 4], finish_reason="length", token_times=[1.0, 1.5, 2.5]),
        SimpleNamespace(prompt_ids=[1], token_ids=[5], finish_reason="eos", token_times=[1.25]),
    ]
    record = RequestRecord(started=0.0)
    record.group = SimpleNamespace(sequences=sequences, ended=None, joined_at=0.5, created=0.25, batch_at_join=0)
    record.finish(200)
    exporter = PrometheusExporter("distilgpt2")
    exporter.on_request(record)
    lines = exposition(exporter.registry)
    assert f'{NAME}_count{{model_name="distilgpt2"}} 2.0' in lines
    assert f'{NAME}_sum{{model_name="distilgpt2"}} 1.5' in lines
    assert f'{NAME}_bucket{{le="0.5",model_name="distilgpt2"}} 1.0' in lines
    assert 'textgen:request_time_per_output_token_seconds_count{model_name="distilgpt2"} 1.0' in lines
    assert 'textgen:request_time_per_output_token_seconds_sum{model_name="distilgpt2"} 0.75' in lines

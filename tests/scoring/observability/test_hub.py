"""A known mix of requests through score.run: the log line, Prometheus' /metrics and the
OpenTelemetry reader all count exactly what was sent and answered, refusals by cause."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

GREEDY = {"do_sample": False, "max_new_tokens": 6, "details": True}


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "model_name"))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("textgen:")
    }


def stream_finals(content: bytes) -> list[dict]:
    events = [line[6:] for line in content.decode().splitlines() if line.startswith("data: ")]
    return [json.loads(e) for e in events if e != "[DONE]" and "finish_reason" in json.loads(e)]


@pytest.fixture
def mix(observed, monkeypatch, caplog):
    """Sends the mix; returns what the answers say was generated, and the log lines."""
    caplog.set_level(logging.INFO, logger="distilgpt2_scoring.requests")
    service = observed.service
    reasons, prompt_tokens, completion_tokens = Counter(), 0, 0

    def count(answers):
        nonlocal prompt_tokens, completion_tokens
        for a in answers:
            reasons[a["finish_reason"]] += 1
            prompt_tokens += a.get("prompt_tokens", a.get("usage", {}).get("prompt_tokens", 0))
            completion_tokens += a.get("completion_tokens", a.get("usage", {}).get("completion_tokens", 0))

    ids = {"x-ms-request-id": "req-1", "x-ms-client-request-id": "client-1"}
    status, body = observed.post({"input_data": ["The quick brown fox", "Hello"], "params": GREEDY}, ids)
    assert status == 200
    count(json.loads(body))
    status, body = observed.post({"input_data": ["Once upon a time"], "params": {**GREEDY, "stop": [" "]}})
    count(json.loads(body))
    status, body = observed.post({"input_data": ["A stream"], "params": {**GREEDY, "stream": True}})
    assert status == 200
    count(stream_finals(body))
    assert observed.post(b"{not json")[0] == 400
    assert observed.post({"input_data": ["a"], "params": {"top_p": 7}})[0] == 422
    limit, service.scheduler.max_in_flight = service.scheduler.max_in_flight, 0
    assert observed.post({"input_data": ["no room"], "params": GREEDY})[0] == 429
    service.scheduler.max_in_flight = limit
    late = service.settings.model_copy(update={"request_timeout_ms": 500})  # a deadline already past
    monkeypatch.setattr(service, "settings", late)
    assert observed.post({"input_data": ["too late"], "params": GREEDY})[0] == 503
    status, body = observed.post({"input_data": ["too late"], "params": {**GREEDY, "stream": True}})
    assert (status, b"deadline" in body) == (200, True), body
    late_prompt_tokens = 2 * len(service.tokenizer.encode("too late", add_special_tokens=False).ids)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "distilgpt2_scoring.requests"]
    requests_ = [x for x in lines if x["textgen"] == "request"]
    return {"reasons": reasons, "prompt_tokens": prompt_tokens + late_prompt_tokens,
            "completion_tokens": completion_tokens, "lines": requests_}  # fmt: skip


def test_every_request_has_one_log_line_with_its_figures_and_no_text(mix):
    lines = mix["lines"]
    assert [(x["status"], x["error_type"]) for x in lines] == [
        (200, None), (200, None), (200, None), (400, "bad_request"), (422, "validation"), (429, "overloaded"),
        (503, "deadline_exceeded"), (200, "deadline_exceeded"),
    ]  # fmt: skip
    first = lines[0]
    assert first["request_id"] == "req-1" and first["client_request_id"] == "client-1"
    assert (
        first["shape"] == "published"
        and first["prompts"] == 2
        and first["samples"] == 1
        and first["engine"] == "openvino"
    )
    assert first["completion_tokens"] > 0 and first["tokens_per_s"] > 0
    assert 0 <= first["queue_wait_s"] <= first["time_to_first_token_s"] <= first["total_s"]
    assert first["batch_size_at_admission"] == 0
    assert lines[2]["stream"] is True and lines[3]["shape"] is None  # refused before it was understood
    assert not any("prompt_text" in x or "completion_text" in x for x in lines)
    assert "The quick brown fox" not in json.dumps(lines)
    assert sum(x["completion_tokens"] for x in lines) == mix["completion_tokens"]


def test_metrics_count_what_was_sent_finish_reasons_and_refusals_by_cause(mix, observed):
    metrics = scrape(observed.metrics_port)
    success = {dict(labels)["finished_reason"]: v for (name, labels), v in metrics.items()
               if name == "textgen:request_success_total"}  # fmt: skip
    assert success == {**mix["reasons"], "deadline": 2}
    assert metrics[("textgen:prompt_tokens_total", ())] == mix["prompt_tokens"]
    assert metrics[("textgen:generation_tokens_total", ())] == mix["completion_tokens"]
    errors = {tuple(dict(labels).values()): v for (name, labels), v in metrics.items()
              if name == "textgen:request_errors_total"}  # fmt: skip
    assert errors == {("bad_request", "400"): 1, ("validation", "422"): 1, ("overloaded", "429"): 1,
                      ("deadline_exceeded", "503"): 1}  # fmt: skip
    refusals = {dict(labels)["cause"]: v for (name, labels), v in metrics.items()
                if name == "textgen:request_refusals_total"}  # fmt: skip
    assert refusals == {"overloaded": 1, "deadline_exceeded": 2}
    assert metrics[("textgen:e2e_request_latency_seconds_count", ())] == len(mix["lines"])
    assert metrics[("textgen:time_to_first_token_seconds_count", ())] == 3  # the requests that got a token
    assert metrics[("textgen:inter_token_latency_seconds_count", ())] > 0


def test_opentelemetry_receives_the_same_figures(mix, observed):
    metrics = scrape(observed.metrics_port)
    points = {}
    for resource in observed.otel_reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    labels = tuple(sorted((k, v) for k, v in point.attributes.items() if k != "model_name"))
                    points[(metric.name, labels)] = getattr(point, "value", None) or getattr(point, "count", None)
    for name in ("prompt_tokens", "generation_tokens"):
        assert points[(f"textgen.{name}", ())] == metrics[(f"textgen:{name}_total", ())]
    for (name, labels), value in metrics.items():
        if name in ("textgen:request_success_total", "textgen:request_refusals_total", "textgen:request_errors_total"):
            assert points[(name.replace("textgen:", "textgen.").removesuffix("_total"), labels)] == value
    assert points[("textgen.e2e_request_latency_seconds", ())] == len(mix["lines"])
    # Inter-token latency: each request's mean gap in both, every gap in Prometheus only (Metric.per_token)
    per_token = "request_time_per_output_token_seconds"
    assert points[(f"textgen.{per_token}", ())] == metrics[(f"textgen:{per_token}_count", ())] > 0
    assert not any(name == "textgen.inter_token_latency_seconds" for name, _ in points)


def test_gauges_report_the_window_and_reach_every_exporter(mix, observed, caplog):
    scheduler = observed.observability.sampler.scheduler
    # A refused request's client has its answer before the engine thread drops its sequence: let it.
    deadline = time.monotonic() + 30
    while (scheduler.in_engine or scheduler.queued) and time.monotonic() < deadline:
        time.sleep(0.05)
    gauges = observed.observability.sampler.sample()
    assert gauges.running == 0 and gauges.waiting == 0 and gauges.tokens_per_s > 0
    assert gauges.refusals == {"overloaded": 1, "deadline_exceeded": 2}
    assert gauges.kv_cache_usage in (None, 0.0)
    observed.observability.publish_gauges(gauges)
    metrics = scrape(observed.metrics_port)
    assert metrics[("textgen:generation_tokens_per_second", ())] == pytest.approx(gauges.tokens_per_s)
    [line] = [json.loads(r.getMessage()) for r in caplog.records if '"textgen": "engine"' in r.getMessage()]
    assert line["refusals"] == {"overloaded": 1, "deadline_exceeded": 2} and line["running"] == 0


def test_for_service_follows_the_settings_and_log_text_puts_prompts_and_answers_in_the_line(
    observed, monkeypatch, caplog
):
    from distilgpt2_scoring.observability import Observability

    caplog.set_level(logging.INFO, logger="distilgpt2_scoring.requests")
    settings = observed.service.settings.model_copy(update={"log_text": True, "gauge_interval_s": 3600})
    observability = Observability.for_service(observed.service, settings)
    monkeypatch.setattr(observed.score, "observability", observability)
    try:
        status, body = observed.post({"prompt": "Hello", "max_tokens": 3, "n": 2})
    finally:
        observability.close()
    assert status == 200
    [line] = [json.loads(r.getMessage()) for r in caplog.records if '"textgen": "request"' in r.getMessage()]
    choices = json.loads(body)["choices"]
    assert line["shape"] == "openai" and line["samples"] == 2 and line["prompt_text"] == ["Hello", "Hello"]
    assert line["completion_text"] == [c["text"] for c in sorted(choices, key=lambda c: c["index"])]

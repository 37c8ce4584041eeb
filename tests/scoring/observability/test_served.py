"""The real azmlinfsrv with TEXTGEN_METRICS_PORT: /metrics on 127.0.0.1 counts a known mix, the
request lines reach the server's log with Azure's request ids, and README's Operate scrape is one.

UPDATE_README_SCRAPE=1 rewrites README's scrape block from this run."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from distilgpt2_asset.serve import free_port, start_server

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[3] / "README.md"
SCRAPE = re.compile(r"(<!-- scraped by tests/scoring/observability/test_served.py -->\n```text\n)(.*?)(```\n)", re.S)
CARD = {"input_data": ["I believe the meaning of life is"], "params": {"do_sample": False, "max_new_tokens": 20,
                                                                    "details": True}}  # fmt: skip


@pytest.fixture(scope="module")
def served(tiny_mlflow_model, engine_cache, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("observed-server") / "azmlinfsrv.log"
    metrics_port = free_port()
    env = {"TEXTGEN_CACHE_DIR": str(engine_cache), "TEXTGEN_METRICS_PORT": str(metrics_port),
           "TEXTGEN_GAUGE_INTERVAL_S": "0.5"}  # fmt: skip
    with open(log_path, "w") as log:
        server = start_server(tiny_mlflow_model, port=free_port(), threads=4, env=env, log=log)
        try:
            answers = [
                requests.post(server.score_url, json=CARD, headers={"x-ms-request-id": f"r{i}"}, timeout=60).json()
                for i in range(3)
            ]
            stream = requests.post(
                server.score_url, json={**CARD, "params": {**CARD["params"], "stream": True}}, timeout=60
            )
            bad = requests.post(server.score_url, json={"input_data": ["a"], "params": {"top_k": -1}}, timeout=60)
            time.sleep(1.5)  # a gauge sample after the traffic
            scrape = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            yield {"answers": answers, "stream": stream, "bad": bad, "scrape": scrape, "log_path": log_path}
        finally:
            server.stop()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "model_name"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("textgen:")
    }


def test_metrics_count_the_mix(served):
    metrics = samples(served["scrape"])
    finals = [json.loads(line[6:]) for line in served["stream"].text.splitlines() if '"finish_reason"' in line]
    answers = [a for answer in served["answers"] for a in answer] + finals
    assert metrics[("textgen:generation_tokens_total", ())] == sum(
        a.get("completion_tokens", a.get("usage", {}).get("completion_tokens")) for a in answers
    )
    reasons = {}
    for a in answers:
        reasons[a["finish_reason"]] = reasons.get(a["finish_reason"], 0) + 1
    assert {
        dict(k)["finished_reason"]: v for (n, k), v in metrics.items() if n == "textgen:request_success_total"
    } == reasons
    assert served["bad"].status_code == 422
    assert metrics[("textgen:request_errors_total", (("error_type", "validation"), ("status", "422")))] == 1
    assert metrics[("textgen:e2e_request_latency_seconds_count", ())] == 5
    assert metrics[("textgen:num_requests_running", ())] == 0


def test_every_request_line_reaches_the_server_log_with_its_request_id(served):
    lines = [
        line[line.index("{") :]
        for line in served["log_path"].read_text().splitlines()
        if '"textgen": "request"' in line
    ]
    records = [json.loads(line) for line in lines]
    assert [r["request_id"] for r in records[:3]] == ["r0", "r1", "r2"]
    assert [r["status"] for r in records] == [200, 200, 200, 200, 422]
    assert records[3]["stream"] is True


def test_readme_shows_a_scrape_of_this_server(served):
    shown = "".join(
        line + "\n"
        for line in served["scrape"].splitlines()
        if line.startswith("textgen:") and not re.match(r"textgen:\S+_(bucket|created)\b", line)
    )
    readme = README.read_text()
    block = SCRAPE.search(readme)
    assert block, "README.md has no scrape block"
    if os.environ.get("UPDATE_README_SCRAPE") == "1":
        README.write_text(readme[: block.start(2)] + shown + readme[block.end(2) :])
        block = SCRAPE.search(README.read_text())
    expected = {(name, labels) for name, labels in samples(shown)}
    assert {(name, labels) for name, labels in samples(block.group(2))} == expected

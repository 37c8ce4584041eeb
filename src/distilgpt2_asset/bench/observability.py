"""(g) What observability costs: our server with all of it on against all of it off, 8 closed-loop
clients sending the card's request, in alternating runs (off, on, off, on, ...) so that a change in
the machine's load falls on both alike. Target: on >= 98% of off's aggregate tokens/s.

"On" is everything a deployment can turn on, with no Azure to send to: the request and gauge lines
(every second instead of every 10 s), Prometheus on 127.0.0.1 (scraped every second, as a
scraper would), OpenTelemetry to an Application Insights connection string whose ingestion
endpoint is a closed local port, and the data collector writing to its local capture.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import requests

from ..serve import free_port, start_server
from ..spec import load_spec
from .clients import NEW_TOKENS, Counter, closed_loop

TARGET = 0.98
OFF = {"TEXTGEN_REQUEST_LOG": "false", "TEXTGEN_METRICS_PORT": "0", "TEXTGEN_COLLECT_DATA": "false"}


def on_environment(metrics_port: int) -> dict[str, str]:
    return {
        "TEXTGEN_REQUEST_LOG": "true",
        "TEXTGEN_GAUGE_INTERVAL_S": "1",
        "TEXTGEN_METRICS_PORT": str(metrics_port),
        "TEXTGEN_METRICS_HOST": "127.0.0.1",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/",
        "TEXTGEN_COLLECT_DATA": "true",
        "AZUREML_MDC_ENABLED": "true",
        "AZUREML_MDC_LOCAL_CAPTURE": "true",
    }


def _scrape_every_second(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        except requests.RequestException:
            pass


def _run(mlflow_dir: Path, env: dict, clients: int, rounds: int, log_path: Path, metrics_port: int | None) -> dict:
    card = json.loads(json.dumps(load_spec().sample_request))
    card["params"]["max_new_tokens"] = NEW_TOKENS
    with open(log_path, "w") as log:
        server = start_server(mlflow_dir, port=free_port(), threads=16, env=env, log=log)
        stop = threading.Event()
        scraper = threading.Thread(target=_scrape_every_second, args=(metrics_port, stop), daemon=True)
        try:
            closed_loop(server.score_url, lambda n: card, clients, 1, "warm-up")
            if metrics_port:
                scraper.start()
            return closed_loop(server.score_url, lambda n: card, clients, rounds, "measured").summary(
                Counter(mlflow_dir)
            )
        finally:
            stop.set()
            server.stop()


def measure(
    mlflow_dir: Path, cache_dir: Path, log_dir: Path, clients: int = 8, rounds: int = 4, pairs: int = 3
) -> dict:
    """Aggregate tokens/s of `pairs` alternating off/on runs, their medians and the ratio on/off."""
    base = {"TEXTGEN_CACHE_DIR": str(cache_dir), "TEXTGEN_ENGINE": "openvino"}
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for pair in range(pairs):
        for mode in ("off", "on"):
            port = free_port() if mode == "on" else None
            env = {**base, **(on_environment(port) if port is not None else OFF)}
            print(f"(g) observability {mode}, run {pair + 1} of {pairs}", flush=True)
            log_path = log_dir / f"observability-{mode}-{pair}.log"
            runs[mode].append(_run(mlflow_dir, env, clients, rounds, log_path, port))
            time.sleep(1)
    medians = {mode: statistics.median(r["tokens_per_s"] for r in rs) for mode, rs in runs.items()}
    lines = sum('"textgen": "request"' in line for line in log_path.read_text().splitlines())
    return {
        "clients": clients, "rounds": rounds, "pairs": pairs, "runs": runs,
        "off_tokens_per_s": medians["off"], "on_tokens_per_s": medians["on"],
        "on_over_off": medians["on"] / medians["off"], "target": TARGET,
        "request_lines_in_last_on_log": lines,
    }  # fmt: skip


def table(figures: dict) -> str:
    met = "met" if figures["on_over_off"] >= figures["target"] else "missed"
    return (
        f"(g) observability at {figures['clients']} clients: off {figures['off_tokens_per_s']:.0f} tokens/s, "
        f"on {figures['on_tokens_per_s']:.0f} tokens/s (medians of {figures['pairs']} alternating runs): "
        f"{figures['on_over_off']:.3f}x, target >= {figures['target']} ({met})"
    )

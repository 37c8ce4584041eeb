"""(g) What observability costs: our server with all of it on against all of it off, 8 closed-loop
clients sending the card's request. Both servers are up at once and their runs alternate (off, on,
on, off, off, on, ...), so that a change in the machine's load falls on both alike; each side's
figure is its runs taken together. Target: on >= 98% of off's aggregate tokens/s.

"On" is everything a deployment can turn on, with no Azure to send to: the request and gauge lines
(every second instead of every 10 s), Prometheus on 127.0.0.1 (scraped every second while the "on"
server runs: a scrape of the idle one would fall on "off"'s runs), OpenTelemetry to an Application
Insights connection string whose ingestion endpoint is a closed local port, and the data collector
writing to its local capture.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import requests

from ..serve import free_port, start_server
from .clients import Counter, Load, card_request, closed_loop, merged

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


class Scraper:
    """GET /metrics every second while in its `with` block, as Prometheus would."""

    def __init__(self, port: int):
        self.port = port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scrape, daemon=True)

    def _scrape(self) -> None:
        while not self._stop.wait(1.0):
            try:
                requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5)
            except requests.RequestException:
                pass

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure(
    mlflow_dir: Path, cache_dir: Path, log_dir: Path, clients: int = 8, rounds: int = 4, pairs: int = 5
) -> dict:
    """Aggregate tokens/s of each side over its `pairs` runs, alternating, and the ratio on/off."""
    card = card_request()
    metrics_port = free_port()
    base = {"TEXTGEN_CACHE_DIR": str(cache_dir), "TEXTGEN_ENGINE": "openvino"}
    environments = {"off": {**base, **OFF}, "on": {**base, **on_environment(metrics_port)}}
    urls: dict[str, str] = {}
    runs: dict[str, list[Load]] = {"off": [], "on": []}
    with contextlib.ExitStack() as stack:  # both servers stopped, their logs closed, however the runs end
        for mode, env in environments.items():
            log = stack.enter_context(open(log_dir / f"observability-{mode}.log", "w"))
            server = start_server(mlflow_dir, port=free_port(), threads=16, env=env, log=log)
            stack.callback(server.stop)
            urls[mode] = server.score_url
            closed_loop(urls[mode], lambda n: card, clients, 1, f"{mode}: warm-up")
        for pair in range(pairs):
            for mode in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                print(f"(g) observability {mode}, run {pair + 1} of {pairs}", flush=True)
                with Scraper(metrics_port) if mode == "on" else contextlib.nullcontext():
                    runs[mode].append(closed_loop(urls[mode], lambda n: card, clients, rounds, mode))
    count = Counter(mlflow_dir)
    sides = {mode: merged(loads).summary(count) for mode, loads in runs.items()}
    lines = (log_dir / "observability-on.log").read_text().count('"textgen": "request"')
    return {
        "clients": clients, "rounds": rounds, "pairs": pairs,
        "runs": {mode: [_tokens_per_s(load, count) for load in loads] for mode, loads in runs.items()},
        "off_tokens_per_s": sides["off"]["tokens_per_s"], "on_tokens_per_s": sides["on"]["tokens_per_s"],
        "on_over_off": sides["on"]["tokens_per_s"] / sides["off"]["tokens_per_s"], "target": TARGET,
        "failures": sides["off"]["failures"] + sides["on"]["failures"], "request_lines_in_on_log": lines,
    }  # fmt: skip


def _tokens_per_s(load: Load, count: Counter) -> float:
    return load.summary(count)["tokens_per_s"]


def table(figures: dict) -> str:
    met = "met" if figures["on_over_off"] >= figures["target"] else "missed"
    return (
        f"(g) observability at {figures['clients']} clients: off {figures['off_tokens_per_s']:.0f} tokens/s, "
        f"on {figures['on_tokens_per_s']:.0f} tokens/s ({figures['pairs']} alternating runs each): "
        f"{figures['on_over_off']:.3f}x, target >= {figures['target']} ({met})"
    )

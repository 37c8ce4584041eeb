"""The serving benchmark: the stock deployment vs ours vs the raw engine, on the distilgpt2-shaped testing model.

    python -m distilgpt2_asset.bench serving [--quick] [--output benchmarks/]

(a) one request, 100 new tokens, greedy: tokens/s of the stock server, the raw engine and ours;
(b) 8 closed-loop clients sending the card's request (max_new_tokens 100): aggregate tokens/s,
    p50/p95 latency, failures;
(c) peak RSS (server process tree) and cold start (process start to the first healthy answer,
    the model's OpenVINO files in its folder);
(d) mixed traffic, 8 closed-loop clients whose requests differ as real callers' do (temperature,
    top_p, a quarter greedy, 16-128 new tokens, prompt echoed or not): aggregate tokens/s, and how
    much slower short requests (<= 32 tokens) are than the same requests alone on the server, timed
    before each part of (d) (clients.ShortRequests: the p95 of each one's slowdown), beside both on
    the raw engine given the same traffic (the same requests from 8 closed loops, and alone);
(e) streaming: time to first token at 8 concurrent streaming clients against the stock server's
    time to the whole answer, and streamed tokens/s against (b): a streamed part follows each of
    our (b)'s parts, and the ratio pairs the two;
fidelity: greedy token agreement of the served int8 engine with transformers fp32 (fidelity.py).
Raw engine figures (OpenVINO GenAI in a process of its own, no server, built as the server builds
it) come from the same run, in runs that alternate with ours (clients.between_raw_runs): one before
each of our (a) requests and after the last, one of each batch before each of SEGMENTS parts of (b)
and after the last, and (d)'s traffic likewise around its parts. Every raw figure is the median of
its runs; ours are the median (a) and the parts of (b) and (d) taken together, so that a change in
the machine's load falls on both alike; (a)'s, (b)'s and (d)'s throughput ratios to the raw engine
pair each request or part of ours with the mean of the raw runs on either side of it
(report.bracketed). Every
side's tokens are counted alike: the answer's text re-tokenized (clients.Counter; the raw engine's
ids are decoded first). Stock = azmlinfsrv + the MLflow transformers pipeline (stock_score.py),
1 sync worker; ours = azmlinfsrv + scoring/score.py, gthread. Writes results.json (this run, with
the CPU's model and class) and results.png, and files the run under its CPU class in
results-by-class.json; prints every ratio against the targets. A benchmark, not a
test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from ..paths import asset_root
from ..serve import free_port, start_server
from . import fidelity, raw
from .clients import (
    ALONE_REPEATS,
    NEW_TOKENS,
    SHORT_OF_16,
    Counter,
    Load,
    PeakRss,
    ShortRequests,
    between_raw_runs,
    card_request,
    closed_loop,
    greedy_request,
    merged,
    mixed_request,
    post,
    single_requests,
    timings,
)
from .machine import machine
from .report import plot, ratios, serving_tables, short_requests

SERVER_THREADS = 16
STOCK_SCRIPT = Path(__file__).resolve().parent / "stock_score.py"
BY_CLASS_FILE = "results-by-class.json"
SEGMENTS = 3  # parts of our (b) and (d), with the raw engine's runs between them


class RawRuns:
    """The raw engine's runs, taken between our server's measurements (none for the stock server)."""

    def __init__(self, engine: raw.RawEngine | None = None):
        self.engine = engine
        self.runs: dict[str, list[float]] = defaultdict(list)
        self.short = ShortRequests()

    def take(self, key: str, batch: int, sampling: str = "greedy") -> None:
        if self.engine is not None:
            self.runs[key].append(self.engine.run(batch, sampling))

    def take_mixed_traffic(self, clients: int, rounds: int) -> None:
        """A part of (d) on the raw engine: its short requests alone, then the traffic from `clients`
        closed loops of `rounds` requests (its tokens/s, under "mixed_traffic", and its short requests' times)."""
        if self.engine is not None:
            part = self.engine.mixed_traffic(clients, rounds)
            self.runs["mixed_traffic"].append(part["tokens_per_s"])
            self.short.add_part(part["alone"], part["loaded"])

    def figures(self) -> dict:
        """The median of each rate's runs ({key}_tokens_per_s), every run, and (d)'s short requests."""
        medians = {f"{key}_tokens_per_s": statistics.median(runs) for key, runs in self.runs.items()}
        short = {"short_requests": self.short.summary()} if self.short.slowdowns else {}
        return {**medians, **short, "runs": dict(self.runs)}


def parts(loads: list[Load], count: Counter) -> dict:
    """Each part's tokens/s, for the ratios that pair it with the raw runs taken on either side of it."""
    return {"parts_tokens_per_s": [load.summary(count)["tokens_per_s"] for load in loads]}


def measure_server(
    name: str, mlflow_dir: Path, entry_script: Path, threads: int | None, env: dict, args, log_dir: Path,
    raw_runs: RawRuns | None = None,
) -> dict:  # fmt: skip
    count = Counter(mlflow_dir)
    raw_runs = raw_runs or RawRuns()
    segments = SEGMENTS if raw_runs.engine is not None else 1  # the stock server's are slow, and alternate with nothing
    card, greedy = card_request(), greedy_request()
    prompt = card["input_data"][0]
    with open(log_dir / f"{name}-server.log", "w") as log:
        started = time.perf_counter()
        server = start_server(
            mlflow_dir, port=free_port(), threads=threads, entry_script=entry_script, env=env, log=log
        )
        result: dict[str, object] = {"cold_start_s": time.perf_counter() - started}
        rss = PeakRss(server.process.pid)
        try:
            url = server.score_url
            print(f"{name}: healthy after {result['cold_start_s']:.1f} s; (a) single request", flush=True)
            result["single"] = single_requests(url, greedy, count, args.repeats, lambda: raw_runs.take("batch_1", 1))
            streams = name == "ours"
            then_streamed = ", each part whole, then streamed (e)" if streams else ""
            print(f"{name}: (b) {args.clients} clients, the card's request{then_streamed}", flush=True)
            streamed = {**card, "params": {**card["params"], "stream": True}}

            def take_raw_b() -> None:
                raw_runs.take("card_8", 8, "card")
                raw_runs.take("batch_8", 8)

            def uniform_part() -> list[Load]:
                loads = [closed_loop(url, lambda n: card, args.clients, args.rounds, "uniform")]
                if streams:  # (e): a streamed part right after each whole one, for its ratio to pair them
                    loads.append(closed_loop(url, lambda n: streamed, args.clients, args.rounds, "streaming"))
                return loads

            b_parts = between_raw_runs(segments, take_raw_b, uniform_part)
            uniform = [loads[0] for loads in b_parts]
            result["uniform"] = merged(uniform).summary(count) | parts(uniform, count)
            if streams:
                streaming = [loads[1] for loads in b_parts]
                result["streaming"] = merged(streaming).summary(count) | parts(streaming, count)
            print(f"{name}: (d) {args.clients} clients, mixed traffic; its short requests alone", flush=True)
            short = ShortRequests()

            def mixed_part() -> Load:
                alone = [post(url, mixed_request(prompt, n)) for n in SHORT_OF_16 * ALONE_REPEATS]
                load = closed_loop(url, lambda n: mixed_request(prompt, n), args.clients, args.rounds * 2, "mixed")
                short.add_part(timings(alone), timings(load.outcomes))
                return load

            def take_raw_d() -> None:
                raw_runs.take_mixed_traffic(args.clients, args.rounds * 2)

            mixed = between_raw_runs(segments, take_raw_d, mixed_part)
            result["mixed"] = merged(mixed).summary(count) | parts(mixed, count)
            result["short_requests"] = short.summary()
        finally:
            result["peak_rss_gb"] = rss.stop()
            server.stop()
    return result


def file_by_class(folder: Path, results: dict) -> None:
    """results-by-class.json: the last run on each CPU class, this one replacing its class's."""
    path = folder / BY_CLASS_FILE
    classes = json.loads(path.read_text())["classes"] if path.is_file() else {}
    classes[results["config"]["cpu_class"]] = results
    path.write_text(json.dumps({"classes": classes}, indent=2) + "\n")


def run(args, mlflow_dir: Path) -> int:
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-engine-cache-"))
    load_before = os.getloadavg()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))  # the servers' logs, for when a number looks wrong
    print("raw OpenVINO GenAI on", mlflow_dir, "in a process of its own, its runs between ours", flush=True)
    raw_engine = raw.RawEngine(mlflow_dir, cache_dir)
    raw_runs = RawRuns(raw_engine)
    ours_env = {"TEXTGEN_CACHE_DIR": str(cache_dir), "TEXTGEN_ENGINE": "openvino"}
    try:
        ours = measure_server(
            "ours", mlflow_dir, asset_root() / "scoring" / "score.py", SERVER_THREADS, ours_env, args, log_dir, raw_runs
        )
    finally:
        raw_engine.close()
    results = {"raw_engine": raw_runs.figures(), "ours": ours}
    results["stock"] = measure_server("stock", mlflow_dir, STOCK_SCRIPT, None, {}, args, log_dir)
    print("fidelity: greedy token agreement, served int8 engine vs transformers fp32", flush=True)
    results["fidelity"] = fidelity.measure(mlflow_dir, cache_dir, prompts=args.fidelity_prompts)
    results["config"] = {
        "model": str(mlflow_dir), "quick": args.quick, "clients": args.clients, "rounds": args.rounds,
        "repeats": args.repeats, "segments": SEGMENTS, "new_tokens": NEW_TOKENS, "server_threads": SERVER_THREADS,
        "engine": raw.served_config(cache_dir).describe(), **machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    results["ratios"] = ratios(results)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    file_by_class(args.output, results)
    plot(results, args.output / "results.png")
    print("\n" + serving_tables(results) + "\n" + short_requests(results))
    print(f"\nwrote {args.output / 'results.json'} and {args.output / 'results.png'}; server logs in {log_dir}")
    shutil.rmtree(cache_dir, ignore_errors=True)
    return 0

"""The serving benchmark: the stock deployment vs ours vs the raw engine, on the distilgpt2-shaped testing model.

    python -m distilgpt2_asset.bench serving [--quick] [--output benchmarks/]

(a) one request, 100 new tokens, greedy: tokens/s of the stock server, the raw engine and ours;
(b) 8 closed-loop clients sending the card's request (max_new_tokens 100): aggregate tokens/s,
    p50/p95 latency, failures;
(c) peak RSS (server process tree) and cold start (process start to the first healthy answer,
    the model's OpenVINO files in its folder);
(d) mixed traffic, 8 closed-loop clients whose requests differ as real callers' do (temperature,
    top_p, a quarter greedy, 16-128 new tokens, prompt echoed or not): aggregate tokens/s, and the
    latency of short requests (<= 32 tokens) against the same requests on an idle server;
(e) streaming: time to first token at 8 concurrent streaming clients against the stock server's
    time to the whole answer, and streamed tokens/s against (b);
fidelity: greedy token agreement of the served int8 engine with transformers fp32 (fidelity.py).
Raw engine figures (OpenVINO GenAI in one process, no server, built as the server builds it) come
from the same run. Stock = azmlinfsrv + the MLflow transformers pipeline (stock_score.py), 1 sync
worker; ours = azmlinfsrv + scoring/score.py, gthread. Writes results.json (this run, with the CPU's
model and class) and results.png, and files the run under its CPU class in results-by-class.json;
prints every ratio against the targets. A benchmark, not a test: the numbers depend on the machine
and on what else runs on it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..paths import asset_root
from ..serve import free_port, start_server
from ..spec import load_spec
from . import fidelity, raw
from .clients import NEW_TOKENS, Counter, PeakRss, closed_loop, mixed_request, post, single_requests
from .machine import machine
from .report import plot, print_table, ratios

SERVER_THREADS = 16
STOCK_SCRIPT = Path(__file__).resolve().parent / "stock_score.py"
BY_CLASS_FILE = "results-by-class.json"


def measure_server(
    name: str, mlflow_dir: Path, entry_script: Path, threads: int | None, env: dict, args, log_dir: Path, alongside=None
) -> dict:
    spec = load_spec()
    count = Counter(mlflow_dir)
    card = json.loads(json.dumps(spec.sample_request))
    card["params"]["max_new_tokens"] = NEW_TOKENS
    prompt = card["input_data"][0]
    greedy = {
        "input_data": [prompt],
        "params": {"do_sample": False, "max_new_tokens": NEW_TOKENS, "return_full_text": False},
    }
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
            result["single"] = single_requests(url, greedy, count, args.repeats, alongside)
            print(f"{name}: (d) short requests on an idle server", flush=True)
            idle = [
                post(url, mixed_request(prompt, n))
                for n in range(16)
                if mixed_request(prompt, n)["params"]["max_new_tokens"] <= 32
            ]
            result["idle_short_p50_s"] = sorted(o.seconds for o in idle)[len(idle) // 2]
            print(f"{name}: (b) {args.clients} clients, the card's request", flush=True)
            result["uniform"] = closed_loop(url, lambda n: card, args.clients, args.rounds, "uniform").summary(count)
            print(f"{name}: (d) {args.clients} clients, mixed traffic", flush=True)
            result["mixed"] = closed_loop(
                url, lambda n: mixed_request(prompt, n), args.clients, args.rounds * 2, "mixed"
            ).summary(count)
            if name == "ours":
                print(f"{name}: (e) {args.clients} streaming clients", flush=True)
                streamed = {**card, "params": {**card["params"], "stream": True}}
                result["streaming"] = closed_loop(
                    url, lambda n: streamed, args.clients, args.rounds, "streaming"
                ).summary(count)
        finally:
            result["peak_rss_gb"] = rss.stop()
            server.stop()
    return result


def raw_engine(mlflow_dir: Path, cache_dir: Path) -> dict:
    """OpenVINO GenAI alone, each sequence configured as the server configures it: batch 1 and 8
    greedy, 8 of the card's request (what (b) sends: sampling costs the engine itself), and 8 prompts
    with 4 sampling settings."""
    greedy = raw.measure("openvino", mlflow_dir, cache_dir, [1, 8])
    card = raw.measure("openvino", mlflow_dir, cache_dir, [8], sampling="card")
    mixed = raw.measure("openvino", mlflow_dir, cache_dir, [8], sampling="mixed")
    return {
        "batch_1_tokens_per_s": greedy["1"],
        "batch_8_tokens_per_s": greedy["8"],
        "card_8_tokens_per_s": card["8"],
        "mixed_8_tokens_per_s": mixed["8"],
    }


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
    print("raw OpenVINO GenAI on", mlflow_dir, flush=True)
    results = {"raw_engine": raw_engine(mlflow_dir, cache_dir)}
    ours_env = {"TEXTGEN_CACHE_DIR": str(cache_dir), "TEXTGEN_ENGINE": "openvino"}
    results["ours"] = measure_server(
        "ours", mlflow_dir, asset_root() / "scoring" / "score.py", SERVER_THREADS, ours_env, args, log_dir
    )
    results["stock"] = measure_server("stock", mlflow_dir, STOCK_SCRIPT, None, {}, args, log_dir)
    print("fidelity: greedy token agreement, served int8 engine vs transformers fp32", flush=True)
    results["fidelity"] = fidelity.measure(mlflow_dir, cache_dir, prompts=args.fidelity_prompts)
    results["config"] = {
        "model": str(mlflow_dir), "quick": args.quick, "clients": args.clients, "rounds": args.rounds,
        "repeats": args.repeats, "new_tokens": NEW_TOKENS, "server_threads": SERVER_THREADS,
        "engine": raw.served_config(cache_dir).describe(), **machine(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    results["ratios"] = ratios(results)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    file_by_class(args.output, results)
    plot(results, args.output / "results.png")
    print_table(results)
    print(f"\nwrote {args.output / 'results.json'} and {args.output / 'results.png'}; server logs in {log_dir}")
    shutil.rmtree(cache_dir, ignore_errors=True)
    return 0

"""Speed benchmark: the stock deployment vs ours vs raw CTranslate2, on the distilgpt2-shaped testing model.

    python -m distilgpt2_asset.bench [--quick] [--output benchmarks/]

(a) one request, 100 new tokens (greedy): tokens/s of the stock server, raw CTranslate2 int8
    generate_batch, and our server;
(b) N concurrent clients each sending the model card's request (max_new_tokens 100) for a fixed
    number of rounds: aggregate tokens/s, p50/p95 latency, failures, for both servers;
(c) peak RSS (server process tree) and cold start (process start to first healthy answer).
Stock = azmlinfsrv + the MLflow transformers pipeline (benchmarks/stock_score.py), 1 sync
worker; ours = azmlinfsrv + scoring/score.py (int8 engine, dynamic batching, gthread).
Writes results.json and results.png; prints every ratio against the issue's targets.
A benchmark, not a test: numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .paths import asset_root, home
from .serve import LocalServer, free_port, start_server
from .spec import load_spec

NEW_TOKENS = 100
SERVER_THREADS = 16
TARGETS = {
    "a_ours_vs_raw_ct2": 0.95,
    "a_ours_vs_stock": 3.0,
    "b_throughput_ours_vs_stock": 10.0,
    "c_rss_gb_max": 1.5,
    "c_cold_start_s_max": 20.0,
}


class PeakRss:
    """Samples the RSS of a process and its children every 0.2 s; keeps the peak."""

    def __init__(self, pid: int):
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**30


def benchmark_model() -> Path:
    """The distilgpt2-shaped testing model built as an MLflow folder (made once under the local home)."""
    from .build import build_mlflow_model
    from .testing_models import make_testing_model

    root = home() / "bench"
    mlflow_dir = root / "distilgpt2-shaped-mlflow"
    snapshot = root / "distilgpt2-shaped"
    if not (mlflow_dir / "MLmodel").is_file():
        if not (snapshot / "config.json").is_file():
            shutil.rmtree(snapshot, ignore_errors=True)  # an interrupted earlier attempt
            make_testing_model("distilgpt2", snapshot)
        build_mlflow_model(load_spec(), str(snapshot), None, mlflow_dir)
    return mlflow_dir


class Counter:
    """Generated tokens of an answer, counted with the model's tokenizer."""

    def __init__(self, mlflow_dir: Path):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))

    def __call__(self, text: str) -> int:
        return min(len(self.tokenizer.encode(text, add_special_tokens=False).ids), NEW_TOKENS)


class RawCTranslate2:
    """CTranslate2 int8 generate_batch at batch 1 (greedy), in this process: the ceiling for (a)."""

    def __init__(self, mlflow_dir: Path, cache_dir: Path, prompt: str):
        import ctranslate2
        from tokenizers import Tokenizer
        from distilgpt2_scoring.engines.conversion import converted_model

        started = time.perf_counter()
        model_dir = converted_model(mlflow_dir, cache_dir)
        self.conversion_s = time.perf_counter() - started
        tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))
        self.tokens = tokenizer.encode(prompt, add_special_tokens=False).tokens
        threads = os.cpu_count() or 1
        self.generator = ctranslate2.Generator(str(model_dir), device="cpu", compute_type="int8", intra_threads=threads)
        self.rates: list[float] = []

    def measure(self) -> None:
        t0 = time.perf_counter()
        [result] = self.generator.generate_batch(
            [self.tokens], max_length=NEW_TOKENS, sampling_topk=1, include_prompt_in_result=False
        )
        self.rates.append(len(result.sequences_ids[0]) / (time.perf_counter() - t0))

    def summary(self) -> dict:
        return {"tokens_per_s": statistics.median(self.rates[1:]), "conversion_s": self.conversion_s}


def _post(url: str, body: dict, timeout: float = 600) -> tuple[int, object, float]:
    import requests

    t0 = time.perf_counter()
    try:
        response = requests.post(url, json=body, timeout=timeout)
        answer = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else response.text
        return response.status_code, answer, time.perf_counter() - t0
    except requests.RequestException as exc:
        return 0, str(exc), time.perf_counter() - t0


def single_request(server: LocalServer, count: Counter, prompt: str, repeats: int, alongside=None) -> dict:
    """Median tokens/s of one greedy request at a time; `alongside` runs between requests, so that
    two measurements on a shared, noisy machine see the same conditions."""
    body = {"input_data": [prompt], "params": {"do_sample": False, "max_new_tokens": NEW_TOKENS, "return_full_text": False}}
    rates = []
    for _ in range(repeats + 1):  # the first request warms up
        status, answer, seconds = _post(server.score_url, body)
        if status != 200:
            raise RuntimeError(f"single request failed: HTTP {status} {answer}")
        rates.append(count(answer[0]) / seconds)
        if alongside:
            alongside()
    return {"tokens_per_s": statistics.median(rates[1:])}


def concurrent_clients(server: LocalServer, count: Counter, request: dict, clients: int, rounds: int) -> dict:
    """`clients` threads, each sending `rounds` requests back to back."""
    from tqdm import tqdm

    prompt = request["input_data"][0]
    latencies, tokens, failures = [], 0, 0
    lock = threading.Lock()
    progress = tqdm(total=clients * rounds, desc=f"  {clients} clients x {rounds} rounds", unit="req", leave=False)

    def client(_):
        nonlocal tokens, failures
        for _ in range(rounds):
            status, answer, seconds = _post(server.score_url, request)
            with lock:
                if status == 200 and isinstance(answer, list) and answer[0].startswith(prompt):
                    latencies.append(seconds)
                    tokens += count(answer[0][len(prompt):])
                else:
                    failures += 1
                progress.update()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    progress.close()
    quantiles = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else latencies * 19
    return {
        "requests": clients * rounds,
        "failures": failures,
        "tokens": tokens,
        "wall_s": wall,
        "tokens_per_s": tokens / wall,
        "p50_s": statistics.median(latencies) if latencies else None,
        "p95_s": quantiles[18] if latencies else None,
    }


def measure_server(
    name: str, mlflow_dir: Path, entry_script: Path, threads: int | None, env: dict, args, log_dir: Path, alongside=None
) -> dict:
    spec = load_spec()
    count = Counter(mlflow_dir)
    request = json.loads(json.dumps(spec.sample_request))
    request["params"]["max_new_tokens"] = NEW_TOKENS
    with open(log_dir / f"{name}-server.log", "w") as log:
        started = time.perf_counter()
        server = start_server(mlflow_dir, port=free_port(), threads=threads, entry_script=entry_script, env=env, log=log)
        cold_start = time.perf_counter() - started
        rss = PeakRss(server.process.pid)
        try:
            print(f"{name}: healthy after {cold_start:.1f} s; (a) single request", flush=True)
            single = single_request(server, count, request["input_data"][0], args.repeats, alongside)
            print(f"{name}: (b) {args.clients} concurrent clients", flush=True)
            load = concurrent_clients(server, count, request, args.clients, args.rounds)
        finally:
            peak = rss.stop()
            server.stop()
    return {"cold_start_s": cold_start, "peak_rss_gb": peak, "single": single, "concurrent": load}


def cpu_features() -> list[str]:
    """The instruction sets int8 speed depends on (AVX-512 VNNI roughly doubles CTranslate2 int8 over AVX2)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]


def ratios(results: dict) -> dict:
    stock, ours, raw = results["stock"], results["ours"], results["raw_ctranslate2"]
    return {
        "a_ours_vs_raw_ct2": ours["single"]["tokens_per_s"] / raw["tokens_per_s"],
        "a_ours_vs_stock": ours["single"]["tokens_per_s"] / stock["single"]["tokens_per_s"],
        "b_throughput_ours_vs_stock": ours["concurrent"]["tokens_per_s"] / stock["concurrent"]["tokens_per_s"],
        "b_ours_p95_below_stock_p50": ours["concurrent"]["p95_s"] < stock["concurrent"]["p50_s"],
        "b_zero_failures": ours["concurrent"]["failures"] == 0 and stock["concurrent"]["failures"] == 0,
        "c_ours_rss_gb": ours["peak_rss_gb"],
        "c_ours_cold_start_s": ours["cold_start_s"],
    }


def verdicts(r: dict) -> list[tuple[str, str, bool]]:
    return [
        ("(a) ours / raw CTranslate2 int8", f"{r['a_ours_vs_raw_ct2']:.2f}x (target >= {TARGETS['a_ours_vs_raw_ct2']})", r["a_ours_vs_raw_ct2"] >= TARGETS["a_ours_vs_raw_ct2"]),
        ("(a) ours / stock", f"{r['a_ours_vs_stock']:.2f}x (target >= {TARGETS['a_ours_vs_stock']})", r["a_ours_vs_stock"] >= TARGETS["a_ours_vs_stock"]),
        ("(b) throughput ours / stock", f"{r['b_throughput_ours_vs_stock']:.2f}x (target >= {TARGETS['b_throughput_ours_vs_stock']})", r["b_throughput_ours_vs_stock"] >= TARGETS["b_throughput_ours_vs_stock"]),
        ("(b) our p95 below stock's p50", str(r["b_ours_p95_below_stock_p50"]), r["b_ours_p95_below_stock_p50"]),
        ("(b) zero failed requests", str(r["b_zero_failures"]), r["b_zero_failures"]),
        ("(c) our peak RSS", f"{r['c_ours_rss_gb']:.2f} GB (target <= {TARGETS['c_rss_gb_max']})", r["c_ours_rss_gb"] <= TARGETS["c_rss_gb_max"]),
        ("(c) our cold start", f"{r['c_ours_cold_start_s']:.1f} s (target <= {TARGETS['c_cold_start_s_max']})", r["c_ours_cold_start_s"] <= TARGETS["c_cold_start_s_max"]),
    ]  # fmt: skip


def print_table(results: dict) -> None:
    stock, ours, raw = results["stock"], results["ours"], results["raw_ctranslate2"]
    print(f"\n{'':34}{'stock':>12}{'raw ct2 int8':>14}{'ours':>12}")
    print(f"{'(a) 1 request, tokens/s':34}{stock['single']['tokens_per_s']:12.1f}{raw['tokens_per_s']:14.1f}{ours['single']['tokens_per_s']:12.1f}")
    for key, label in (("tokens_per_s", "(b) aggregate tokens/s"), ("p50_s", "(b) p50 latency, s"), ("p95_s", "(b) p95 latency, s"), ("failures", "(b) failed requests")):
        print(f"{label:34}{stock['concurrent'][key]:12.2f}{'':14}{ours['concurrent'][key]:12.2f}")
    print(f"{'(c) peak RSS, GB':34}{stock['peak_rss_gb']:12.2f}{'':14}{ours['peak_rss_gb']:12.2f}")
    print(f"{'(c) cold start, s':34}{stock['cold_start_s']:12.1f}{'':14}{ours['cold_start_s']:12.1f}")
    print(f"    (ours with the int8 conversion cached; a machine's first start converts once: {raw['conversion_s']:.1f} s more)\n")
    for name, value, met in verdicts(results["ratios"]):
        print(f"{'met    ' if met else 'MISSED '} {name:34} {value}")  # fmt: skip


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stock, ours, raw = results["stock"], results["ours"], results["raw_ctranslate2"]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.2))
    colors = {"stock": "#9e9e9e", "raw ct2 int8": "#64b5f6", "ours": "#1565c0"}

    def bars(ax, values: dict, title: str, unit: str):
        ax.bar(list(values), list(values.values()), color=[colors[k] for k in values])
        for i, v in enumerate(values.values()):
            ax.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom")
        ax.set_title(title)
        ax.set_ylabel(unit)

    bars(axes[0], {"stock": stock["single"]["tokens_per_s"], "raw ct2 int8": raw["tokens_per_s"], "ours": ours["single"]["tokens_per_s"]}, f"(a) one request, {NEW_TOKENS} tokens", "tokens/s")
    bars(axes[1], {"stock": stock["concurrent"]["tokens_per_s"], "ours": ours["concurrent"]["tokens_per_s"]}, f"(b) {results['config']['clients']} clients, aggregate", "tokens/s")
    width = 0.38
    for offset, key in ((-width / 2, "p50_s"), (width / 2, "p95_s")):
        values = [stock["concurrent"][key], ours["concurrent"][key]]
        axes[2].bar([i + offset for i in range(2)], values, width, label=key[:3])
    axes[2].set_xticks(range(2), ["stock", "ours"])
    axes[2].set_title("(b) latency")
    axes[2].set_ylabel("seconds")
    axes[2].legend()
    bars(axes[3], {"stock": stock["peak_rss_gb"], "ours": ours["peak_rss_gb"]}, "(c) peak RSS", "GB")
    bars(axes[4], {"stock": stock["cold_start_s"], "ours": ours["cold_start_s"]}, "(c) cold start (conversion cached)", "seconds")
    fig.suptitle(f"distilgpt2-shaped model on {results['config']['cpus']} CPUs ({results['config']['when']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distilgpt2_asset.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="MLflow model folder (default: the distilgpt2-shaped testing model, built once)")
    parser.add_argument("--output", type=Path, default=asset_root() / "benchmarks", help="folder for results.json and results.png")
    parser.add_argument("--quick", action="store_true", help="1 round and 1 repeat: checks the script, not the numbers")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="requests per client in (b)")
    parser.add_argument("--repeats", type=int, default=5, help="requests measured in (a), after one warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.repeats = 1, 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    mlflow_dir = args.model or benchmark_model()
    args.output.mkdir(parents=True, exist_ok=True)
    prompt = load_spec().sample_request["input_data"][0]
    load_before = os.getloadavg()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))  # the servers' logs, for when a number looks wrong

    # A fresh conversion cache: the int8 conversion is timed every run; our server then starts
    # with it cached, as every start after a machine's first does.
    with tempfile.TemporaryDirectory(prefix="bench-textgen-cache-") as cache_dir:
        print(f"raw CTranslate2 int8 on {mlflow_dir} (measured in turn with our server's requests)", flush=True)
        raw = RawCTranslate2(mlflow_dir, Path(cache_dir), prompt)
        ours_env = {"TEXTGEN_CACHE_DIR": cache_dir, "TEXTGEN_ENGINE": "ctranslate2"}
        ours_script = asset_root() / "scoring" / "score.py"
        results = {"ours": measure_server("ours", mlflow_dir, ours_script, SERVER_THREADS, ours_env, args, log_dir, raw.measure)}
        results["raw_ctranslate2"] = raw.summary()
        del raw  # its threads and weights must not compete with the stock server
    stock_script = asset_root() / "benchmarks" / "stock_score.py"
    results["stock"] = measure_server("stock", mlflow_dir, stock_script, None, {}, args, log_dir)
    results["config"] = {
        "model": str(mlflow_dir), "quick": args.quick, "clients": args.clients, "rounds": args.rounds,
        "repeats": args.repeats, "new_tokens": NEW_TOKENS, "server_threads": SERVER_THREADS,
        "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(), "cpu_features": cpu_features(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    results["ratios"] = ratios(results)
    results["targets"] = TARGETS
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.output / "results.png")
    print_table(results)
    print(f"\nwrote {args.output / 'results.json'} and {args.output / 'results.png'}; server logs in {log_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed benchmark: the stock deployment vs ours vs the raw engine, on the distilgpt2-shaped testing model.

    python -m distilgpt2_asset.bench [--quick] [--output benchmarks/]
    python -m distilgpt2_asset.bench --engine-speeds   # raw engines per CPU class -> benchmarks/engine-speeds.json
    python -m distilgpt2_asset.bench --generate        # (f) bulk generation vs the raw engine -> benchmarks/generate.json

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
(f) with --generate only: `distilgpt2-asset generate` over 1,000 prompts (64 new tokens) against the
    raw engine fed the same prompts in one process, and a model folder's first-start OpenVINO
    conversion (bench/generate.py).
Raw engine figures (OpenVINO GenAI, in one process, no server) come from the same run.
Stock = azmlinfsrv + the MLflow transformers pipeline (stock_score.py), 1 sync worker; ours =
azmlinfsrv + scoring/score.py, gthread. Writes results.json and results.png; prints every
ratio against the targets, with the CPU's features. A benchmark, not a test: the numbers depend
on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from distilgpt2_scoring.engines import engine_class

from ..paths import asset_root, home
from ..serve import free_port, start_server
from ..spec import load_spec
from . import generate, raw
from .clients import NEW_TOKENS, Counter, PeakRss, closed_loop, mixed_request, post, single_requests
from .report import engine_speeds_table, plot, print_table, ratios, readme_blocks, render_readme

SERVER_THREADS = 16
STOCK_SCRIPT = Path(__file__).resolve().parent / "stock_score.py"


def benchmark_model() -> Path:
    """The distilgpt2-shaped testing model built as an MLflow folder (made once under the local home)."""
    from ..build import build_mlflow_model
    from ..testing_models import make_testing_model

    root = home() / "bench"
    mlflow_dir = root / "distilgpt2-shaped-mlflow"
    snapshot = root / "distilgpt2-shaped"
    if not (mlflow_dir / "engines").is_dir():  # built before the OpenVINO model was part of a build
        shutil.rmtree(mlflow_dir, ignore_errors=True)
        if not (snapshot / "config.json").is_file():
            shutil.rmtree(snapshot, ignore_errors=True)  # an interrupted earlier attempt
            make_testing_model("distilgpt2", snapshot)
        build_mlflow_model(load_spec(), str(snapshot), None, mlflow_dir)
    return mlflow_dir


def cpu_features() -> list[str]:
    """The instruction sets int8 speed depends on (AVX-512 VNNI roughly doubles int8 matrix work over AVX2)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]


def cpu_class() -> str:
    features = cpu_features()
    return next((f for f in ("avx512_vnni", "avx512f", "avx2") if f in features), "older")


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return {"cpu": model, "cpus": os.cpu_count(), "cpu_features": cpu_features(), "cpu_class": cpu_class()}


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
        result = {"cold_start_s": time.perf_counter() - started}
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
    """OpenVINO GenAI alone: batch 1, batch 8, and 8 prompts with 4 sampling settings."""
    rates = raw.measure("openvino", mlflow_dir, cache_dir, [1, 8])
    mixed = raw.measure("openvino", mlflow_dir, cache_dir, [8], mixed=True)
    return {"batch_1_tokens_per_s": rates["1"], "batch_8_tokens_per_s": rates["8"], "mixed_8_tokens_per_s": mixed["8"]}


def measure_engine_speeds(mlflow_dir: Path, cache_dir: Path) -> dict:
    """Each engine's raw tokens/s at batch 1 and 8 on this CPU, and with AVX2 kernels where an engine can be held to them."""
    classes: dict[str, dict] = {cpu_class(): {}, "avx2": {}}
    for engine, avx2_switch in raw.AVX2_SWITCH.items():
        batches = [1] if engine_class(engine).batching == "sequential" else [1, 8]
        print(f"raw {engine}", flush=True)
        classes[cpu_class()][engine] = raw.measure(engine, mlflow_dir, cache_dir, batches)
        if avx2_switch is not None and cpu_class() != "avx2":
            classes["avx2"][engine] = raw.measure(engine, mlflow_dir, cache_dir, batches, env=avx2_switch)
    return {
        "what": f"raw decode tokens/s summed over the batch, distilgpt2-shaped model, {raw.NEW_TOKENS} new tokens, greedy, {os.cpu_count()} vCPUs",
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "classes": {name: engines for name, engines in classes.items() if engines},
        "how": "avx2 on an AVX-512 host: the engine held to AVX2 kernels (CT2_FORCE_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2); "
        "OpenVINO has no such switch, so it has no avx2 figure unless measured on an AVX2 machine",
    }


def rendered_readme(folder: Path) -> str:
    """README.md with its generated blocks rendered from folder's results.json, engine-speeds.json and generate.json."""
    readme = asset_root() / "README.md"
    results, speeds, bulk = (
        json.loads((folder / name).read_text()) for name in ("results.json", "engine-speeds.json", "generate.json")
    )
    blocks = {**readme_blocks(results, speeds), "bulk generation": generate.readme_block(bulk)}
    return render_readme(readme.read_text(), blocks)


def write_readme_figures(folder: Path) -> Path:
    readme = asset_root() / "README.md"
    readme.write_text(rendered_readme(folder))
    print(f"wrote the generated figures of {readme}")
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distilgpt2_asset.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, help="MLflow model folder (default: the distilgpt2-shaped testing model, built once)"
    )
    parser.add_argument(
        "--output", type=Path, default=asset_root() / "benchmarks", help="folder for results.json and results.png"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round and 1 repeat: checks the script, not the numbers (writes to a temporary folder unless --output)",
    )
    parser.add_argument(
        "--engine-speeds", action="store_true", help="only the raw engines per CPU class, for deploy's timeout check"
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="only (f): bulk generation against the raw engine, and the first-start conversion",
    )
    parser.add_argument(
        "--observability",
        action="store_true",
        help="only (g): our server with observability on vs off (bench/observability.py) -> observability.json",
    )
    parser.add_argument(
        "--readme", action="store_true", help="only rewrite README.md's generated figures from the committed results"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=4, help="requests per client in (b) and (e); twice as many in (d)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="requests measured in (a), after one warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.repeats = 1, 1
        if "--output" not in (argv or []):
            args.output = Path(tempfile.mkdtemp(prefix="bench-quick-"))
    if args.readme:
        write_readme_figures(args.output)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    mlflow_dir = args.model or benchmark_model()
    args.output.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-engine-cache-"))
    if args.engine_speeds:
        speeds = measure_engine_speeds(mlflow_dir, cache_dir)
        (args.output / "engine-speeds.json").write_text(json.dumps(speeds, indent=2) + "\n")
        print(engine_speeds_table(speeds))
        return 0
    if args.generate:
        figures = generate.benchmark(mlflow_dir, Path(tempfile.mkdtemp(prefix="bench-generate-")), machine())
        (args.output / "generate.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(generate.table(figures))
        return 0
    if args.observability:
        from . import observability

        log_dir = Path(tempfile.mkdtemp(prefix="bench-observability-"))
        figures = observability.measure(
            mlflow_dir, cache_dir, log_dir, args.clients, args.rounds, 1 if args.quick else 3
        )
        (args.output / "observability.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(observability.table(figures))
        return 0
    load_before = os.getloadavg()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))  # the servers' logs, for when a number looks wrong
    print("raw OpenVINO GenAI on", mlflow_dir, flush=True)
    results = {"raw_engine": raw_engine(mlflow_dir, cache_dir)}
    ours_env = {"TEXTGEN_CACHE_DIR": str(cache_dir), "TEXTGEN_ENGINE": "openvino"}
    results["ours"] = measure_server(
        "ours", mlflow_dir, asset_root() / "scoring" / "score.py", SERVER_THREADS, ours_env, args, log_dir
    )
    results["stock"] = measure_server("stock", mlflow_dir, STOCK_SCRIPT, None, {}, args, log_dir)
    results["config"] = {
        "model": str(mlflow_dir), "quick": args.quick, "clients": args.clients, "rounds": args.rounds,
        "repeats": args.repeats, "new_tokens": NEW_TOKENS, "server_threads": SERVER_THREADS, **machine(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    results["ratios"] = ratios(results)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.output / "results.png")
    print_table(results)
    print(f"\nwrote {args.output / 'results.json'} and {args.output / 'results.png'}; server logs in {log_dir}")
    shutil.rmtree(cache_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

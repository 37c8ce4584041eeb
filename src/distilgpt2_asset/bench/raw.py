"""Raw engines in one process, no server: the ceiling our server is measured against, and the
speeds `deploy` sizes request timeouts with. OpenVINO's pipeline is built by the server's own
factory with the server's decided configuration (batch size, KV cache, split-fuse, threads,
precision), so the raw engine is measured as it is served; --precision measures another.

Each measurement runs in a subprocess, so that an instruction-set limit can be set before the
engine's library loads: CTranslate2 honours CT2_FORCE_CPU_ISA and PyTorch ATEN_CPU_CAPABILITY,
which run the kernels an AVX2-only CPU runs on this host's cores. OpenVINO has no such switch, so
its AVX2 figure can only come from an AVX2 machine (ONEDNN_MAX_CPU_ISA=AVX2 reaches only the oneDNN
primitives inside its CPU plugin, which then fails to build its int8 FullyConnected: 2026.4, amx).

    python -m distilgpt2_asset.bench.raw ENGINE MLFLOW_DIR CACHE_DIR [--batches 1 8] [--sampling card] [--precision f32]
prints {"tokens_per_s": {batch: tokens/s}} as JSON. RawEngine keeps one OpenVINO process up instead
(--serve), for benchmarks that alternate its runs with a server's.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from distilgpt2_scoring.hardware import openvino_variant, parse_variant

NEW_TOKENS = 100
REPEATS = 3  # the best of a few runs: raw figures are ceilings
# (do_sample, temperature, top_p) of each batch's sequences: greedy, or the card's request, as (b) sends it.
SETTINGS = {"greedy": (False, 1.0, 1.0), "card": (True, 0.2, 0.9)}
# OpenVINO's configurations measured: the served one (hardware.decide's), each precision hint alone,
# the CPU plugin's own default (bf16 on a CPU with bf16, else f32), and f32 with its activations
# quantized in groups of each of GROUPS (named as hardware.openvino_variant names them: "f32/q128").
SERVED, PLUGIN_DEFAULT = "served", "default"
PRECISIONS = (SERVED, PLUGIN_DEFAULT, "f32", "bf16")
GROUPS = (64, 128, 256)
# What forces each engine down to AVX2 kernels (None: no switch exists).
AVX2_SWITCH = {
    "ctranslate2": {"CT2_FORCE_CPU_ISA": "AVX2"},
    "transformers": {"ATEN_CPU_CAPABILITY": "avx2"},
    "openvino": None,
}


def prompt_ids(mlflow_dir: Path) -> list[int]:
    from tokenizers import Tokenizer

    from ..spec import load_spec

    tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))
    return tokenizer.encode(load_spec().sample_request["input_data"][0], add_special_tokens=False).ids


def variants() -> tuple[str, ...]:
    """Every OpenVINO configuration bench measures by name (PRECISIONS, then f32 with GROUPS)."""
    return PRECISIONS + tuple(openvino_variant("f32", group) for group in GROUPS)


def served_config(cache_dir: Path, precision: str = SERVED):
    """The engine configuration the server decides on this CPU, or another OpenVINO configuration if
    asked: a precision hint alone (the plugin's own activation groups), "f32/q128" (groups of 128),
    or `default` (no hint at all, the plugin's own choice)."""
    from distilgpt2_scoring.hardware import decide
    from distilgpt2_scoring.settings import ServingSettings

    config = decide(ServingSettings(device="cpu", cache_dir=cache_dir))
    if precision == SERVED:
        return config
    hint, group = parse_variant(precision)
    return dataclasses.replace(config, precision=None if hint == PLUGIN_DEFAULT else hint, quantization_group=group)


class OpenVINORuns:
    """One pipeline, built by the server's factory, and what bench measures on it."""

    def __init__(self, mlflow_dir: Path, cache_dir: Path, precision: str = SERVED):
        import numpy
        import openvino

        from distilgpt2_scoring.engines.openvino import continuous_batching_pipeline, openvino_model
        from distilgpt2_scoring.model_files import open_model
        from distilgpt2_scoring.params import signature_defaults

        folder = openvino_model(open_model(mlflow_dir), mlflow_dir / "model", cache_dir)
        self.pipeline = continuous_batching_pipeline(folder, served_config(cache_dir, precision))
        self.defaults = signature_defaults(mlflow_dir)
        self.ids = openvino.Tensor(numpy.array([prompt_ids(mlflow_dir)], dtype=numpy.int64))
        self.model_config = json.loads((mlflow_dir / "model" / "config.json").read_text())
        self.request_ids = iter(range(1 << 62))

    def params(self, sampling: str):
        """A sequence's GenerationParams, greedy or the card's request (SETTINGS), on the served
        defaults (top_k, repetition_penalty from the model's files)."""
        sample, temperature, top_p = SETTINGS[sampling]
        return dataclasses.replace(
            self.defaults, do_sample=sample, temperature=temperature, top_p=top_p, max_new_tokens=NEW_TOKENS
        )

    def mixed_params(self, n: int):
        """The GenerationParams of the n-th request of (d)'s mixed traffic (clients.mixed_request)."""
        from .clients import mixed_request

        asked = mixed_request("", n)["params"]
        return dataclasses.replace(self.defaults, **{k: v for k, v in asked.items() if k != "return_full_text"})

    def add(self, params, i: int):
        """A sequence as the server adds it, running to its length (random weights may hit eos)."""
        from distilgpt2_scoring.engines.openvino import generation_config

        config = generation_config(params, i, self.model_config["vocab_size"], self.model_config["eos_token_id"])
        config.ignore_eos = True
        return self.pipeline.add_request(next(self.request_ids), self.ids, config)

    def run(self, batch: int, sampling: str = "greedy", count: Callable[[list[int]], int] = len) -> float:
        """tokens/s of one batch of `batch` sequences of NEW_TOKENS each, each sequence's tokens
        counted by `count` (its ids; RawEngine's: as the servers' answers are counted)."""
        started = time.perf_counter()
        handles = [self.add(self.params(sampling), i) for i in range(batch)]
        while self.pipeline.has_non_finished_requests():
            self.pipeline.step()
        seconds = time.perf_counter() - started
        return sum(count(list(h.read_all()[0].generated_ids)) for h in handles) / seconds

    def mixed_traffic(self, clients: int, rounds: int, count: Callable[[list[int]], int]) -> dict:
        """One part of (d) on the raw engine: the short requests of the first 16 of the mixed traffic
        alone (each ALONE_REPEATS times, as on the server), then the traffic from `clients` closed
        loops of `rounds` requests each, the n-th request sent being mixed_request's n-th (as
        clients.closed_loop sends them to a server). (max_new_tokens, seconds from add_request to the
        sequence's end) of each request, as clients.ShortRequests takes them ("alone", "loaded"), and
        the loops' tokens/s, each sequence's tokens counted by `count` ("tokens_per_s")."""
        from openvino_genai import GenerationStatus

        from .clients import ALONE_REPEATS, SHORT_OF_16

        params = self.mixed_params
        alone = []
        for n in SHORT_OF_16 * ALONE_REPEATS:
            started, handle = time.perf_counter(), self.add(params(n), n)
            while handle.get_status() == GenerationStatus.RUNNING:
                self.pipeline.step()
            alone.append((params(n).max_new_tokens, time.perf_counter() - started))
        sent, left, loaded, made = itertools.count(), [rounds] * clients, [], []

        def send(loop: int) -> tuple:
            left[loop] -= 1
            n = next(sent)
            return loop, n, time.perf_counter(), self.add(params(n), n)

        began = time.perf_counter()
        in_flight = [send(loop) for loop in range(clients)]
        while in_flight:
            self.pipeline.step()
            for entry in [e for e in in_flight if e[3].get_status() != GenerationStatus.RUNNING]:
                in_flight.remove(entry)
                loop, n, started, handle = entry
                loaded.append((params(n).max_new_tokens, time.perf_counter() - started))
                made.append(list(handle.read_all()[0].generated_ids))
                if left[loop]:
                    in_flight.append(send(loop))
        seconds = time.perf_counter() - began
        return {"alone": alone, "loaded": loaded, "tokens_per_s": sum(map(count, made)) / seconds}


def _openvino(mlflow_dir: Path, cache_dir: Path, batch: int, sampling: str, precision: str) -> float:
    run = OpenVINORuns(mlflow_dir, cache_dir, precision).run
    run(batch, sampling)  # warm-up
    return max(run(batch, sampling) for _ in range(REPEATS))


def _ctranslate2(mlflow_dir: Path, cache_dir: Path, batch: int, sampling: str, precision: str) -> float:
    from distilgpt2_scoring.engines.ctranslate2 import CTranslate2Engine
    from distilgpt2_scoring.model_files import open_model
    from distilgpt2_scoring.settings import ServingSettings

    settings = ServingSettings(device="cpu", cache_dir=cache_dir)
    engine = CTranslate2Engine.load(open_model(mlflow_dir), mlflow_dir / "model", settings, served_config(cache_dir))
    tokens = [engine.vocabulary[t] for t in prompt_ids(mlflow_dir)]
    sample, temperature, top_p = SETTINGS[sampling]

    def run() -> float:
        started = time.perf_counter()
        results = engine.generator.generate_batch(
            [tokens] * batch, max_length=NEW_TOKENS, min_length=NEW_TOKENS, include_prompt_in_result=False,
            sampling_topk=0 if sample else 1, sampling_topp=top_p, sampling_temperature=temperature,
        )  # fmt: skip
        return sum(len(r.sequences_ids[0]) for r in results) / (time.perf_counter() - started)

    run()
    return max(run() for _ in range(REPEATS))


def _transformers(mlflow_dir: Path, cache_dir: Path, batch: int, sampling: str, precision: str) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(served_config(cache_dir).threads)
    model = AutoModelForCausalLM.from_pretrained(mlflow_dir / "model", use_safetensors=True).eval()
    ids = torch.tensor([prompt_ids(mlflow_dir)] * batch)

    def run() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=NEW_TOKENS,
                                 min_new_tokens=NEW_TOKENS, pad_token_id=0)  # fmt: skip
        return (out.shape[1] - ids.shape[1]) * batch / (time.perf_counter() - started)

    run()
    return max(run() for _ in range(REPEATS))


ENGINES = {"openvino": _openvino, "ctranslate2": _ctranslate2, "transformers": _transformers}


def measure(
    engine: str,
    mlflow_dir: Path,
    cache_dir: Path,
    batches: list[int],
    sampling: str = "greedy",
    env: dict | None = None,
    precision: str = SERVED,
) -> dict[str, float]:
    """{batch: tokens/s} of the raw engine, measured in a subprocess with env (e.g. an ISA limit);
    OpenVINO with the served precision, or another one (PRECISIONS)."""
    command = [
        sys.executable,
        "-m",
        "distilgpt2_asset.bench.raw",
        engine,
        str(mlflow_dir),
        str(cache_dir),
        "--batches",
        *map(str, batches),
        "--precision",
        precision,
        "--sampling",
        sampling,
    ]
    done = subprocess.run(command, env=dict(os.environ, **(env or {})), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"raw {engine} measurement failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_s"]


class RawEngine:
    """OpenVINO GenAI alone in a process that stays up between runs, so that its runs can alternate
    with the server's in one benchmark (a change in the machine's load falls on both alike)."""

    def __init__(self, mlflow_dir: Path, cache_dir: Path):
        command = [sys.executable, "-m", "distilgpt2_asset.bench.raw", "openvino", str(mlflow_dir), str(cache_dir)]
        self.process = subprocess.Popen(
            [*command, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._answer()  # {"ready": true} once the pipeline is built and warm

    def run(self, batch: int, sampling: str = "greedy") -> float:
        """tokens/s of one batch of `batch` sequences (sampling: a SETTINGS key), 100 new tokens each,
        counted as the servers' answers are (clients.Counter.of_ids)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"batch": batch, "sampling": sampling}) + "\n")
        return self._answer()["tokens_per_s"]

    def mixed_traffic(self, clients: int, rounds: int) -> dict:
        """OpenVINORuns.mixed_traffic in the engine's process, tokens counted as the servers' answers are."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"mixed_traffic": [clients, rounds]}) + "\n")
        return self._answer()

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the raw engine process ended (exit code {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def _serve(mlflow_dir: Path, cache_dir: Path) -> int:
    """RawEngine's process: one JSON line in, one out: {"batch", "sampling"} -> {"tokens_per_s"} (tokens
    counted as the servers' answers are);
    {"mixed_traffic": [clients, rounds]} -> OpenVINORuns.mixed_traffic's timings and tokens/s."""
    from .clients import Counter

    runs, count = OpenVINORuns(mlflow_dir, cache_dir), Counter(mlflow_dir).of_ids
    runs.run(8, "card")  # warm-up
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        asked = json.loads(line)
        answer: dict
        if "mixed_traffic" in asked:
            clients, rounds = asked["mixed_traffic"]
            answer = runs.mixed_traffic(clients, rounds, count)
        else:
            answer = {"tokens_per_s": runs.run(asked["batch"], asked["sampling"], count)}
        print(json.dumps(answer), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distilgpt2_asset.bench.raw")
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("mlflow_dir", type=Path)
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--sampling", choices=SETTINGS, default="greedy", help="every sequence greedy, or the card's request"
    )
    parser.add_argument(
        "--precision", choices=variants(), default=SERVED, help="OpenVINO's configuration (precision, groups)"
    )
    parser.add_argument("--serve", action="store_true", help="OpenVINO: answer runs asked on stdin (RawEngine)")
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.mlflow_dir, args.cache_dir)
    rates = {
        str(b): ENGINES[args.engine](args.mlflow_dir, args.cache_dir, b, args.sampling, args.precision)
        for b in args.batches
    }
    print(json.dumps({"tokens_per_s": rates}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

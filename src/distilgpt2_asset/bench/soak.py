"""Soak: one real server under a bounded mix of good, bad and rude clients; nothing may break.

    python -m distilgpt2_asset.bench.soak [--model DIR] [--requests 2000] [--clients 12] [--max-seconds 600]

Concurrent clients cycle through: valid requests (whole and streamed, published and OpenAI
shapes), every kind of invalid request (not JSON, not UTF-8, NaN, numbers too large for a float,
unknown fields, out-of-range values, oversized bodies, wrong methods), clients that hang up in
the middle of a generation, and bursts of simultaneous requests beyond the queue (which must get
429). Reports the 5xx count (must be 0), requests lost (no answer, other than the deliberate hang
ups: must be 0), 429s, and the server's RSS at start and end (growth under 10%; the start is read
after warm-up rounds of the same mix, once the KV cache has grown to what it needs); exits non-zero
when any of these fails. The server binds 127.0.0.1 only; the run is bounded in count and time.
Not a unit test: minutes of load on a real server.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..event_stream import StreamCut, events
from ..serve import free_port, start_server
from ..spec import load_spec

MAX_RSS_GROWTH = 0.10
WARM_UP_ITEMS, WARM_UP_ROUNDS, SETTLED = 200, 12, 0.02  # a round that grows the RSS by less than 2%: settled
QUEUE = 16  # small, so that bursts go past it
BURST = 48

INVALID = [
    b"",
    b"{input_data: [",
    b'{"input_data": ["\xff"]}',
    b"[1, 2]",
    b'"text"',
    b'{"input_data": ["a"], "params": {"temperature": NaN}}',
    b'{"input_data": ["a"], "params": {"temperature": 1' + b"0" * 400 + b"}}",
    b'{"input_data": ["a"], "params": {"top_k": 1' + b"0" * 400 + b"}}",
    b'{"input_data": ["a"], "params": {"seed": -1' + b"0" * 400 + b"}}",
    b'{"prompt": "a", "max_tokens": 1' + b"0" * 400 + b"}",
    b'{"prompt": "a", "logprobs": 5, "best_of": 2}',
    b'{"input_data": ["a"], "params": {"num_beams": 4}}',
    b'{"input_data": [], "params": {}}',
    b'{"input_data": ["a\\ud800"]}',
    b'{"input_data": ["a"], "params": {"temperature": 0}}',
    b'{"input_data": ["a"], "params": {"stop": ["' + b"x" * 300 + b'"] }}',
    b'{"input_data": ["' + b"a" * 2_100_000 + b'"]}',
    b'{"input_data": {"input_string": 5}}',
    b'{"inputs": [[["deep"]]]}',
    b'{"input_data": ["' + b"word " * 1200 + b'"], "params": {"max_new_tokens": 8}}',
]


class Tally:
    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1


def _status_kind(status: int) -> str:
    if status == 429:
        return "429"
    return {2: "2xx", 4: "4xx", 5: "5xx"}.get(status // 100, f"other {status}")


def _post(url: str, data: bytes, tally: Tally, stream: bool = False) -> None:
    import requests

    try:
        with requests.post(
            url, data=data, headers={"Content-Type": "application/json"}, timeout=300, stream=stream
        ) as response:
            if stream and response.status_code == 200:
                try:
                    for _event in events(response.iter_lines()):
                        pass
                except (StreamCut, ValueError):
                    tally.add("lost")  # a stream that ended without its last event
                    return
            tally.add(_status_kind(response.status_code))
    except requests.RequestException:
        tally.add("lost")


def _hang_up(host: str, port: int, tally: Tally) -> None:
    """Ask for a long generation, read a little, hang up (on purpose: not counted as lost)."""
    body = json.dumps(
        {"input_data": ["The"], "params": {"max_new_tokens": 400, "stream": True, "do_sample": True}}
    ).encode()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )
        sock.recv(512)
    tally.add("hung up")


def _burst(url: str, tally: Tally) -> None:
    body = json.dumps({"input_data": ["Once upon a time"], "params": {"max_new_tokens": 24}}).encode()
    with ThreadPoolExecutor(BURST) as pool:
        list(pool.map(lambda _: _post(url, body, tally), range(BURST)))


def _work(n: int, server, tally: Tally, prompt: str) -> None:
    kind = n % 10
    if kind in (0, 1):
        _post(
            server.score_url,
            json.dumps({"input_data": [prompt], "params": {"max_new_tokens": 16 + n % 48}}).encode(),
            tally,
        )
    elif kind == 2:
        _post(
            server.score_url,
            json.dumps({"input_data": [prompt], "params": {"max_new_tokens": 32, "stream": True}}).encode(),
            tally,
            stream=True,
        )
    elif kind == 3:
        _post(
            server.score_url,
            json.dumps({"prompt": prompt, "max_tokens": 24, "n": 2, "stream": n % 20 == 3}).encode(),
            tally,
            stream=n % 20 == 3,
        )
    elif kind in (4, 5, 6):
        _post(server.score_url, INVALID[n % len(INVALID)], tally)
    elif kind == 7:
        _hang_up(server.host, server.port, tally)
    elif kind == 8:
        import requests

        tally.add(_status_kind(requests.put(server.score_url, data=b"{}", timeout=30).status_code))
    elif n % 40 == 9:
        _burst(server.score_url, tally)
    else:
        _post(
            server.score_url,
            json.dumps({"input_data": [prompt, prompt], "params": {"details": True, "max_new_tokens": 8}}).encode(),
            tally,
        )


def main(argv: list[str] | None = None) -> int:
    import psutil

    from .__main__ import benchmark_model

    parser = argparse.ArgumentParser(prog="python -m distilgpt2_asset.bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, help="MLflow model folder (default: the benchmark's distilgpt2-shaped model)"
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="work items after the warm-up (a burst counts as one)"
    )
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--max-seconds", type=float, default=600, help="stop sending new work after this long")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = args.model or benchmark_model()
    prompt = load_spec().sample_request["input_data"][0]
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch, open(Path(scratch) / "server.log", "w") as log:
        env = {
            "TEXTGEN_CACHE_DIR": str(Path(scratch) / "cache"),
            "TEXTGEN_MAX_QUEUE": str(QUEUE),
            "TEXTGEN_MAX_PROMPTS": "8",
        }
        server = start_server(model, port=free_port(), threads=32, env=env, log=log)

        def tree() -> int:
            return sum(
                p.memory_info().rss
                for p in [
                    psutil.Process(server.process.pid),
                    *psutil.Process(server.process.pid).children(recursive=True),
                ]
            )

        try:
            # The same mix first, round after round until the RSS settles: the paged KV cache grows to
            # what this traffic needs (bounded by TEXTGEN_KV_CACHE_GB) and keeps it; growth after that would be a leak.
            warm_up = [tree()]
            while len(warm_up) <= WARM_UP_ROUNDS and (len(warm_up) < 3 or warm_up[-1] > warm_up[-2] * (1 + SETTLED)):
                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(lambda n: _work(n, server, Tally(), prompt), range(WARM_UP_ITEMS)))
                warm_up.append(tree())
            rss_start, started = tree(), time.monotonic()
            items = itertools.takewhile(lambda _: time.monotonic() - started < args.max_seconds, range(args.requests))
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(lambda n: _work(n, server, tally, prompt), items))
            time.sleep(2)  # let dropped generations leave the batch
            rss_end = tree()
            alive = server.process.poll() is None
        finally:
            server.stop()
        traceback_lines = (Path(scratch) / "server.log").read_text().count("Traceback")
    growth = rss_end / rss_start - 1
    report = {
        "answers": dict(tally.counts), "seconds": round(time.monotonic() - started, 1),
        "rss_start_gb": round(rss_start / 2**30, 3), "rss_end_gb": round(rss_end / 2**30, 3),
        "rss_growth": round(growth, 4),
        "server_alive_at_end": alive, "tracebacks_in_server_log": traceback_lines,
        "warm_up_rss_gb": [round(r / 2**30, 3) for r in warm_up],
    }  # fmt: skip
    failed = tally.counts["5xx"] or tally.counts["lost"] or growth >= MAX_RSS_GROWTH or not alive or traceback_lines
    print(json.dumps(report, indent=2))
    print(
        ("FAILED" if failed else "passed")
        + f": 5xx {tally.counts['5xx']}, lost {tally.counts['lost']}, 429 {tally.counts['429']}, RSS {growth:+.1%}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

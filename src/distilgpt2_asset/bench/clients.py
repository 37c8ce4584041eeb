"""HTTP load on one server: single requests, closed-loop clients (uniform or mixed traffic), streaming
clients, and the peak RSS of the server's process tree while they run."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..event_stream import StreamCut, events
from ..spec import load_spec

T = TypeVar("T")
NEW_TOKENS = 100
# Mixed traffic as real callers differ: temperature, top_p, a quarter greedy, lengths, prompt echoed or not.
MIXED_TEMPERATURES, MIXED_TOP_P, MIXED_LENGTHS = (0.2, 0.7, 1.0), (0.9, 0.95, 1.0), (16, 32, 64, 128)
SHORT = 32  # requests of at most this many new tokens are "short"


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


class Counter:
    """Generated tokens of an answer, counted with the model's tokenizer (the same count for every server)."""

    def __init__(self, mlflow_dir: Path):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))

    def __call__(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def of_ids(self, token_ids: list[int]) -> int:
        """The count of an answer made of these generated ids: their text, re-tokenized. (Random
        weights' text re-tokenizes to about 2.5% more tokens than were generated: a raw engine counted
        by its ids would be counted against a lower figure than the servers.)"""
        return self(self.tokenizer.decode(token_ids, skip_special_tokens=True))


@dataclass
class Outcome:
    status: int
    text: str  # the generated text (the prompt removed); empty when not answered
    seconds: float
    max_new_tokens: int
    first_token_s: float | None = None  # streaming: time to the first generated text


_connections = threading.local()


def _session():
    """This thread's HTTP session: its connection stays open between requests, as a caller's client
    (and Azure's front end) keeps it, instead of a TCP connection made and closed for each request."""
    import requests

    if not hasattr(_connections, "session"):
        _connections.session = requests.Session()
    return _connections.session


def post(url: str, body: dict) -> Outcome:
    """One request of the published shape, streamed or not."""
    import requests

    params = body.get("params", {})
    prompt = body["input_data"][0] if params.get("return_full_text", True) else ""
    started = time.perf_counter()
    try:
        with _session().post(url, json=body, timeout=600, stream=bool(params.get("stream"))) as response:
            if response.status_code != 200:
                return Outcome(response.status_code, "", time.perf_counter() - started, params.get("max_new_tokens", 0))
            if not params.get("stream"):
                [text] = response.json()
                return Outcome(200, text[len(prompt) :], time.perf_counter() - started, params.get("max_new_tokens", 0))
            pieces: list[str] = []
            first = None
            for event in events(response.iter_lines()):
                if event["text"] and not (prompt and not pieces and event["text"] == prompt):
                    first = first or time.perf_counter() - started
                pieces.append(event["text"])
            return Outcome(
                200,
                "".join(pieces)[len(prompt) :],
                time.perf_counter() - started,
                params.get("max_new_tokens", 0),
                first,
            )
    except (requests.RequestException, StreamCut):  # a cut stream is a failed request, not a short answer
        return Outcome(0, "", time.perf_counter() - started, params.get("max_new_tokens", 0))


def card_request() -> dict:
    """The card's sample request, asking for NEW_TOKENS new tokens: what (b), (e) and (g) send."""
    card = json.loads(json.dumps(load_spec().sample_request))
    card["params"]["max_new_tokens"] = NEW_TOKENS
    return card


def greedy_request() -> dict:
    """(a)'s request: the card's prompt, NEW_TOKENS greedy tokens, the prompt not echoed."""
    prompt = load_spec().sample_request["input_data"][0]
    params = {"do_sample": False, "max_new_tokens": NEW_TOKENS, "return_full_text": False}
    return {"input_data": [prompt], "params": params}


def request_rate(url: str, body: dict, count: Counter) -> float:
    """Generated tokens/s of one request, answered (RuntimeError otherwise)."""
    outcome = post(url, body)
    if outcome.status != 200:
        raise RuntimeError(f"single request failed: HTTP {outcome.status}")
    return count(outcome.text) / outcome.seconds


def between_raw_runs(parts: int, take_raw: Callable[[], None], measure: Callable[[], T]) -> list[T]:
    """`parts` measurements of ours, each between two runs of the raw engine (take_raw before each and
    once after the last), so that on a shared, noisy machine each pairs with the runs on either side
    of it (report.bracketed)."""
    measured = []
    for _ in range(parts):
        take_raw()
        measured.append(measure())
    take_raw()
    return measured


def single_requests(url: str, body: dict, count: Counter, repeats: int, take_raw: Callable[[], None]) -> dict:
    """tokens/s of one request at a time, `repeats` requests after a warm-up, each between two runs of
    the raw engine (between_raw_runs): their median, and each one's (runs)."""
    request_rate(url, body, count)  # warm-up
    rates = between_raw_runs(repeats, take_raw, lambda: request_rate(url, body, count))
    return {"tokens_per_s": statistics.median(rates), "runs": rates}


def mixed_request(prompt: str, n: int) -> dict:
    """The n-th request of the mixed traffic: every combination comes round, deterministically."""
    greedy = n % 4 == 3
    params: dict[str, int | float | bool] = {
        "max_new_tokens": MIXED_LENGTHS[(n // 2) % 4],
        "return_full_text": n % 2 == 0,
        "do_sample": not greedy,
    }
    if not greedy:
        params |= {"temperature": MIXED_TEMPERATURES[n % 3], "top_p": MIXED_TOP_P[(n // 3) % 3]}
    return {"input_data": [prompt], "params": params}


# The short requests among the first 16 of the mixed traffic, each timed ALONE_REPEATS times on an
# idle server before each part of (d): 8 of each short length.
SHORT_OF_16 = tuple(n for n in range(16) if MIXED_LENGTHS[(n // 2) % 4] <= SHORT)
ALONE_REPEATS = 2


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return statistics.quantiles(values, n=20, method="inclusive")[int(q * 20) - 1] if len(values) > 1 else values[0]


Timing = tuple[int, float]  # (max_new_tokens, seconds) of one answered request


@dataclass
class ShortRequests:
    """(d)'s short requests: how much slower each one is under mixed traffic than the same request alone.

    Each part of (d) times the short requests alone, then the load; a short request's slowdown is its
    seconds under load over the median seconds of requests of its length alone in the same part, so
    that the machine's drift from one part to the next falls on both. (The median of all short
    requests alone would not do: with as many 16- as 32-token requests it is the fastest 32-token one.)
    """

    alone: list[Timing] = field(default_factory=list)
    loaded: list[Timing] = field(default_factory=list)
    slowdowns: list[float] = field(default_factory=list)

    def add_part(self, alone: list[Timing], loaded: list[Timing]) -> None:
        by_length: dict[int, list[float]] = {}
        for length, seconds in alone:
            by_length.setdefault(length, []).append(seconds)
        loaded = [(length, seconds) for length, seconds in loaded if length <= SHORT]
        missing = sorted({length for length, _ in loaded} - set(by_length))
        if missing:
            raise ValueError(f"no request of {missing} new tokens was timed alone")
        self.alone += alone
        self.loaded += loaded
        self.slowdowns += [seconds / statistics.median(by_length[length]) for length, seconds in loaded]

    def summary(self) -> dict:
        """slowdown_p95 (the (d) target's figure), the short requests' p95 seconds under load, and
        the median seconds alone per length."""
        lengths = sorted({length for length, _ in self.alone})
        return {
            "slowdown_p95": quantile(self.slowdowns, 0.95),
            "slowdown_p50": quantile(self.slowdowns, 0.5),
            "p95_s": quantile([seconds for _, seconds in self.loaded], 0.95),
            "alone_s": {str(n): statistics.median(s for length, s in self.alone if length == n) for n in lengths},
        }


def timings(outcomes: list[Outcome]) -> list[Timing]:
    """The answered requests' (max_new_tokens, seconds)."""
    return [(o.max_new_tokens, o.seconds) for o in outcomes if o.status == 200]


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self, count: Counter) -> dict:
        answered = [o for o in self.outcomes if o.status == 200]
        tokens = sum(count(o.text) for o in answered)
        latencies = [o.seconds for o in answered]
        short = [o.seconds for o in answered if o.max_new_tokens <= SHORT]
        summary = {
            "requests": len(self.outcomes),
            "failures": len(self.outcomes) - len(answered),
            "tokens": tokens,
            "wall_s": self.wall_s,
            "tokens_per_s": tokens / self.wall_s,
            "p50_s": quantile(latencies, 0.5),
            "p95_s": quantile(latencies, 0.95),
        }
        if short and len(short) < len(latencies):
            summary |= {"short_p50_s": quantile(short, 0.5), "short_p95_s": quantile(short, 0.95)}
        first = [o.first_token_s for o in answered if o.first_token_s is not None]
        if first:
            summary |= {"first_token_p50_s": quantile(first, 0.5), "first_token_p95_s": quantile(first, 0.95)}
        return summary


def merged(loads: list[Load]) -> Load:
    """Loads run one after another as one: their outcomes, and their walls added."""
    return Load([o for load in loads for o in load.outcomes], sum(load.wall_s for load in loads))


def closed_loop(url: str, request_for: Callable[[int], dict], clients: int, rounds: int, label: str) -> Load:
    """`clients` threads, each sending `rounds` requests back to back (request_for(n), n counting
    every request sent)."""
    from tqdm import tqdm

    load, lock, sent = Load(), threading.Lock(), iter(range(clients * rounds))
    progress = tqdm(total=clients * rounds, desc=f"  {label}: {clients} clients x {rounds}", unit="req", leave=False)

    def client(_):
        for _ in range(rounds):
            with lock:
                n = next(sent)
            outcome = post(url, request_for(n))
            with lock:
                load.outcomes.append(outcome)
                progress.update()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    load.wall_s = time.perf_counter() - started
    progress.close()
    return load

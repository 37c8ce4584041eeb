"""The serving benchmark's raw figures come from runs taken between ours, each the median of its runs."""

from __future__ import annotations

import pytest

from distilgpt2_asset.bench.clients import Counter, Load, Outcome, ShortRequests, merged, timings
from distilgpt2_asset.bench.serving import RawRuns


class CountingEngine:
    """A raw engine whose n-th run gives rates[n]."""

    def __init__(self, rates: list[float]):
        self.rates = iter(rates)
        self.asked: list[tuple[int, str]] = []

    def run(self, batch: int, sampling: str = "greedy") -> float:
        self.asked.append((batch, sampling))
        return next(self.rates)

    def short_latency(self, clients: int, requests: int) -> dict[str, list]:
        """A part of (d) whose short requests take twice their time alone, its long one ten times."""
        self.asked.append((clients, f"short latency, {requests} requests"))
        seconds = next(self.rates)
        return {"alone": [(16, seconds), (32, 2 * seconds)], "loaded": [(16, 2 * seconds), (128, 10 * seconds)]}


def test_each_raw_figure_is_the_median_of_its_runs_and_every_run_is_kept():
    engine = CountingEngine([100.0, 300.0, 200.0, 800.0])
    runs = RawRuns(engine)  # type: ignore[arg-type]
    for _ in range(3):
        runs.take("batch_1", 1)
    runs.take("card_8", 8, "card")
    assert engine.asked == [(1, "greedy")] * 3 + [(8, "card")]
    assert runs.figures() == {
        "batch_1_tokens_per_s": 200.0,
        "card_8_tokens_per_s": 800.0,
        "runs": {"batch_1": [100.0, 300.0, 200.0], "card_8": [800.0]},
    }


def test_the_raw_engines_short_requests_are_pooled_over_its_parts():
    engine = CountingEngine([0.1, 0.3, 0.2])
    runs = RawRuns(engine)  # type: ignore[arg-type]
    for _ in range(3):
        runs.take_short_latency(8, 128)
    assert engine.asked == [(8, "short latency, 128 requests")] * 3
    short = runs.figures()["short_requests"]
    assert short["slowdown_p95"] == pytest.approx(2.0)
    assert short["alone_s"] == pytest.approx({"16": 0.2, "32": 0.4})


def test_a_short_request_is_compared_with_requests_of_its_length_alone_in_the_same_part():
    short = ShortRequests()
    short.add_part(alone=[(16, 0.1), (16, 0.3), (32, 0.2)], loaded=[(16, 0.4), (32, 0.3)])
    short.add_part(alone=[(16, 1.0), (32, 2.0)], loaded=[(16, 1.0), (32, 5.0)])  # a part on a slower machine
    assert short.slowdowns == pytest.approx([2.0, 1.5, 1.0, 2.5])


def test_long_requests_are_not_short_ones():
    short = ShortRequests()
    short.add_part(alone=[(16, 0.1)], loaded=[(16, 0.2), (64, 9.0), (128, 9.0)])
    assert short.slowdowns == pytest.approx([2.0])
    assert short.summary()["p95_s"] == pytest.approx(0.2)


def test_a_short_length_never_timed_alone_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"\[32\] new tokens"):
        ShortRequests().add_part(alone=[(16, 0.1)], loaded=[(16, 0.2), (32, 0.4)])


def test_only_answered_requests_are_timed():
    outcomes = [Outcome(200, "a", 0.5, 16), Outcome(503, "", 0.01, 32)]
    assert timings(outcomes) == [(16, 0.5)]


def test_the_stock_server_alternates_with_no_raw_engine():
    runs = RawRuns()
    runs.take("batch_1", 1)
    assert runs.figures() == {"runs": {}}


def test_loads_run_one_after_another_count_as_one():
    first = Load([Outcome(200, "a", 1.0, 100)], wall_s=2.0)
    second = Load([Outcome(200, "b", 1.0, 100), Outcome(503, "", 0.1, 100)], wall_s=3.0)
    both = merged([first, second])
    assert [o.text for o in both.outcomes] == ["a", "b", ""]
    assert both.wall_s == 5.0


def test_a_ratio_to_the_raw_engine_pairs_each_part_with_the_raw_run_just_before_it():
    from distilgpt2_asset.bench.report import paired

    # The machine ran twice as fast during the second part, for both: each part is 0.9 of its raw run.
    assert paired([90.0, 180.0, 90.0], [100.0, 200.0, 100.0]) == pytest.approx(0.9)


def test_a_part_without_its_raw_run_is_an_error():
    from distilgpt2_asset.bench.report import paired

    with pytest.raises(ValueError):
        paired([90.0, 180.0], [100.0])


def test_each_single_request_after_the_warm_up_follows_its_own_raw_run(monkeypatch):
    from distilgpt2_asset.bench import clients

    order: list[str] = []
    rates = iter([1.0, 10.0, 30.0, 20.0])  # the warm-up's, then three measured requests'

    def request_rate(url, body, count):
        order.append("ours")
        return next(rates)

    monkeypatch.setattr(clients, "request_rate", request_rate)
    single = clients.single_requests("http://127.0.0.1:1/score", {}, None, 3, lambda: order.append("raw"))  # type: ignore[arg-type]
    assert order == ["ours"] + ["raw", "ours"] * 3
    assert single == {"tokens_per_s": 20.0, "runs": [10.0, 30.0, 20.0]}


def test_the_raw_engines_tokens_are_counted_as_the_servers_answers_are(tiny_mlflow_model):
    """Its ids' text, re-tokenized: the servers are counted by the text they answer with."""
    count = Counter(tiny_mlflow_model)
    spelled_out = [count.tokenizer.token_to_id(letter) for letter in "hello"]
    end_of_text = count.tokenizer.token_to_id("<|endoftext|>")
    assert count.of_ids([*spelled_out, end_of_text]) == count("hello") == 1

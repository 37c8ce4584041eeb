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

    def mixed_traffic(self, clients: int, rounds: int) -> dict:
        """A part of (d) whose short requests take twice their time alone, its long one ten times, at
        1000 tokens/s over the seconds of its short request alone."""
        self.asked.append((clients, f"mixed traffic, {rounds} rounds"))
        seconds = next(self.rates)
        return {
            "alone": [(16, seconds), (32, 2 * seconds)],
            "loaded": [(16, 2 * seconds), (128, 10 * seconds)],
            "tokens_per_s": 1000 / seconds,
        }


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


def test_the_raw_engines_short_requests_are_pooled_over_its_parts_and_each_parts_throughput_is_kept():
    engine = CountingEngine([0.1, 0.4, 0.2])
    runs = RawRuns(engine)  # type: ignore[arg-type]
    for _ in range(3):
        runs.take_mixed_traffic(8, 16)
    assert engine.asked == [(8, "mixed traffic, 16 rounds")] * 3
    figures = runs.figures()
    assert figures["short_requests"]["slowdown_p95"] == pytest.approx(2.0)
    assert figures["short_requests"]["alone_s"] == pytest.approx({"16": 0.2, "32": 0.4})
    assert figures["runs"]["mixed_traffic"] == pytest.approx([10000.0, 2500.0, 5000.0])  # for report.bracketed
    assert figures["mixed_traffic_tokens_per_s"] == pytest.approx(5000.0)


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


def test_a_ratio_to_the_raw_engine_pairs_each_part_with_the_raw_runs_on_either_side_of_it():
    from distilgpt2_asset.bench.report import bracketed

    # The machine sped up during the second part and stayed fast: each part is 0.9 of the runs around it.
    assert bracketed([90.0, 135.0, 180.0], [100.0, 100.0, 200.0, 200.0]) == pytest.approx(0.9)


@pytest.mark.parametrize("raw_runs", [[100.0, 100.0], [100.0] * 4])
def test_parts_without_a_raw_run_on_either_side_are_an_error(raw_runs):
    from distilgpt2_asset.bench.report import bracketed

    with pytest.raises(ValueError, match="2 parts need 3 raw runs"):
        bracketed([90.0, 180.0], raw_runs)


def test_each_part_of_ours_lies_between_two_raw_runs():
    from distilgpt2_asset.bench.clients import between_raw_runs

    order: list[str] = []
    parts = iter([10.0, 20.0])

    def measure() -> float:
        order.append("ours")
        return next(parts)

    assert between_raw_runs(2, lambda: order.append("raw"), measure) == [10.0, 20.0]
    assert order == ["raw", "ours", "raw", "ours", "raw"]


def test_each_single_request_after_the_warm_up_lies_between_two_raw_runs(monkeypatch):
    from distilgpt2_asset.bench import clients

    order: list[str] = []
    rates = iter([1.0, 10.0, 30.0, 20.0])  # the warm-up's, then three measured requests'

    def request_rate(url, body, count):
        order.append("ours")
        return next(rates)

    monkeypatch.setattr(clients, "request_rate", request_rate)
    single = clients.single_requests("http://127.0.0.1:1/score", {}, None, 3, lambda: order.append("raw"))  # type: ignore[arg-type]
    assert order == ["ours"] + ["raw", "ours"] * 3 + ["raw"]
    assert single == {"tokens_per_s": 20.0, "runs": [10.0, 30.0, 20.0]}


def test_the_raw_engines_tokens_are_counted_as_the_servers_answers_are(tiny_mlflow_model):
    """Its ids' text, re-tokenized: the servers are counted by the text they answer with."""
    count = Counter(tiny_mlflow_model)
    spelled_out = [count.tokenizer.token_to_id(letter) for letter in "hello"]
    end_of_text = count.tokenizer.token_to_id("<|endoftext|>")
    assert count.of_ids([*spelled_out, end_of_text]) == count("hello") == 1

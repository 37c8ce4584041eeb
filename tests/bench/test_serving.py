"""The serving benchmark's raw figures come from runs taken between ours, each the median of its runs."""

from __future__ import annotations

from distilgpt2_asset.bench.clients import Load, Outcome, merged
from distilgpt2_asset.bench.serving import RawRuns


class CountingEngine:
    """A raw engine whose n-th run gives rates[n]."""

    def __init__(self, rates: list[float]):
        self.rates = iter(rates)
        self.asked: list[tuple[int, str]] = []

    def run(self, batch: int, sampling: str = "greedy") -> float:
        self.asked.append((batch, sampling))
        return next(self.rates)

    def short_latency(self, clients: int, requests: int) -> dict[str, float]:
        self.asked.append((clients, f"short latency, {requests} requests"))
        seconds = next(self.rates)
        return {"idle_short_p50_s": seconds, "short_p95_s": 2 * seconds}


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


def test_short_request_latencies_on_the_raw_engine_are_medians_of_their_runs_in_seconds():
    engine = CountingEngine([0.1, 0.3, 0.2])
    runs = RawRuns(engine)  # type: ignore[arg-type]
    for _ in range(3):
        runs.take_short_latency(8, 128)
    assert engine.asked == [(8, "short latency, 128 requests")] * 3
    figures = runs.figures()
    assert (figures["idle_short_p50_s"], figures["short_p95_s"]) == (0.2, 0.4)
    assert figures["runs"]["short_p95_s"] == [0.2, 0.6, 0.4]


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

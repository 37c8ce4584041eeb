"""The raw engine runs in a process of its own, built as the server builds it, and answers bench's runs."""

from __future__ import annotations

import pytest

from distilgpt2_asset.bench.clients import ALONE_REPEATS, SHORT_OF_16, mixed_request
from distilgpt2_asset.bench.raw import RawEngine


@pytest.fixture(scope="module")
def raw_engine(tiny_mlflow_model, tmp_path_factory):
    engine = RawEngine(tiny_mlflow_model, tmp_path_factory.mktemp("engine-cache"))
    yield engine
    engine.close()


def lengths(numbers) -> list[int]:
    return [mixed_request("", n)["params"]["max_new_tokens"] for n in numbers]


def test_mixed_traffic_is_the_servers_from_as_many_closed_loops_after_its_short_requests_alone(raw_engine):
    part = raw_engine.mixed_traffic(2, 3)
    assert [length for length, _ in part["alone"]] == lengths(SHORT_OF_16 * ALONE_REPEATS)
    # 2 loops of 3 requests each: the first 6 of the mixed traffic, each timed from its add to its end.
    assert sorted(length for length, _ in part["loaded"]) == sorted(lengths(range(6)))
    assert all(seconds > 0 for _, seconds in part["alone"] + part["loaded"])
    assert part["tokens_per_s"] > 0


@pytest.mark.parametrize("sampling", ["greedy", "card"])
def test_a_batch_is_timed_in_tokens_per_second(raw_engine, sampling):
    assert raw_engine.run(2, sampling) > 0

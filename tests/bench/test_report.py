"""The benchmark's report: ratios pair what was measured side by side, and a figure reads as its verdict."""

from __future__ import annotations

import pytest

from distilgpt2_asset.bench.report import engine_speeds_block, ratios, raw_mixed, short_requests, shown


def run(streamed_parts: list[float], whole_parts: list[float]) -> dict:
    """One run's figures, as serving.run files them (only what ratios() reads)."""
    single = {"tokens_per_s": 100.0, "runs": [100.0]}  # one request, between two raw runs
    load = {"tokens_per_s": 500.0, "p50_s": 1.0, "p95_s": 2.0, "failures": 0, "parts_tokens_per_s": [500.0]}
    ours = {
        "single": single,
        "uniform": {**load, "parts_tokens_per_s": whole_parts},
        "mixed": load,
        "short_requests": {"slowdown_p95": 1.5},
        "peak_rss_gb": 0.8,
        "cold_start_s": 2.0,
        "streaming": {**load, "parts_tokens_per_s": streamed_parts, "first_token_p95_s": 0.1},
    }
    raw = {
        "runs": {
            "batch_1": [100.0] * 2,
            "card_8": [500.0] * (len(whole_parts) + 1),
            "batch_8": [500.0] * (len(whole_parts) + 1),
            "mixed_traffic": [500.0] * 2,
        }
    }
    stock = {"single": single, "uniform": load, "mixed": load}
    return {"ours": ours, "raw_engine": raw, "stock": stock}


def test_streamed_throughput_is_paired_with_the_whole_part_just_before_it():
    # The machine ran twice as fast during the second pair: each streamed part is 0.95 of its whole one.
    figures = ratios(run(streamed_parts=[95.0, 190.0, 95.0], whole_parts=[100.0, 200.0, 100.0]))
    assert figures["e_streamed_vs_whole"] == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("value", "target", "higher", "reads"),
    [
        (0.8969, 0.9, True, "0.897"),  # not "0.90", which would meet it
        (2.004, 2.0, False, "2.004"),
        (0.89996, 0.9, True, "0.89996"),
    ],
)
def test_a_figure_that_misses_its_target_never_reads_as_meeting_it(value, target, higher, reads):
    assert shown(value, target, higher) == reads


@pytest.mark.parametrize(("value", "target", "higher"), [(1.784, 2.0, False), (0.9004, 0.9, True), (34.46, None, True)])
def test_a_figure_reads_to_two_decimals_where_they_tell_the_verdict(value, target, higher):
    assert shown(value, target, higher) == f"{value:.2f}"


def test_the_short_requests_paragraph_names_what_a_batched_step_costs_on_the_runs_class():
    run = {
        "ratios": {"d_short_slowdown_p95": 2.5},
        "ours": {"short_requests": {"slowdown_p50": 2.1, "alone_s": {"16": 0.06}}},
        "raw_engine": {},
        "config": {"when": "2026-12-04 18:32", "cpu_class": "amx"},
    }
    speeds = {"classes": {"amx": {"engines": {"openvino": {"1": 350.0, "8": 1400.0}}}}}
    assert "step with 8 sequences takes 2.0x its step with one" in short_requests(run, speeds)
    assert "step with 8" not in short_requests(run, {"classes": {}})  # a class never measured says nothing


def test_each_openvino_configuration_is_named_in_words_where_it_is_measured_and_where_it_is_chosen():
    measured = {"f32/q128": {"1": 370.0, "8": 1445.0}, "f32/q0": {"1": 150.0}, "bf16": {"1": 150.0}}
    speeds = {
        "what": "raw decode tokens/s",
        "classes": {
            "amx": {
                "cpu": "Some CPU", "cpus": 2, "when": "2026-12-04 20:22", "how": "5 rounds",
                "engines": {"openvino": measured["f32/q128"]}, "openvino_precision": measured,
            }
        },
    }  # fmt: skip
    block = engine_speeds_block(speeds)
    assert "| openvino, f32 precision, activations quantized in groups of 128 | 370 | 1445 |  |" in block
    assert "| openvino, f32 precision, activations not quantized | 150 |" in block
    assert "| openvino, bf16 precision | 150 |" in block
    assert "| amx | amx_int8 | openvino, f32 precision, activations quantized in groups of 128 | measured on" in block


def test_mixed_traffic_is_compared_with_the_raw_engine_given_the_same_traffic_around_each_part():
    figures = run(streamed_parts=[500.0], whole_parts=[500.0])
    figures["ours"]["mixed"] = {**figures["ours"]["mixed"], "parts_tokens_per_s": [450.0, 675.0, 900.0]}
    figures["raw_engine"]["runs"]["mixed_traffic"] = [500.0, 500.0, 1000.0, 1000.0]
    assert ratios(figures)["d_ours_vs_raw_traffic"] == pytest.approx(0.9)


def test_the_raw_engines_mixed_traffic_figure_says_what_it_ran():
    assert raw_mixed({"mixed_traffic_tokens_per_s": 900.0, "mixed_8_tokens_per_s": 1.0}) == (900.0, "the same traffic")
    filed_before = {"mixed_8_tokens_per_s": 1197.3}  # runs filed before the raw engine was given (d)'s traffic
    assert raw_mixed(filed_before) == (1197.3, "8 prompts, 4 settings")

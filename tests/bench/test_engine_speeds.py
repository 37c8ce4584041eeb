"""Engine speeds per CPU class: a run files its figures under its own class and keeps every other class's."""

from __future__ import annotations

from distilgpt2_asset.bench.engine_speeds import WHAT, merged, table


def figures(cpu: str, rate: float) -> dict:
    return {
        "cpu": cpu,
        "cpus": 2,
        "cpu_features": [],
        "when": "now",
        "how": "test",
        "engines": {"openvino": {"8": rate}},
    }


def test_a_run_replaces_its_own_class_and_keeps_the_others():
    before = {"what": "old", "classes": {"amx": figures("Intel Xeon", 768.0), "avx512_bf16": figures("AMD EPYC", 1.0)}}
    after = merged(before, {"avx512_bf16": figures("AMD EPYC", 687.0)})
    assert after["what"] == WHAT
    assert after["classes"]["amx"] == before["classes"]["amx"]
    assert after["classes"]["avx512_bf16"]["engines"]["openvino"] == {"8": 687.0}


def test_a_first_run_starts_the_file_and_every_figure_is_printed_with_its_cpu():
    speeds = merged(None, {"avx2": figures("AMD EPYC", 393.0)})
    assert list(speeds["classes"]) == ["avx2"]
    assert "avx2 (AMD EPYC, now):" in table(speeds) and "batch 8:   393.0" in table(speeds)

"""(h) A finetuned model's (a) ratio is judged against the base model's, within 5%."""

from __future__ import annotations

from distilgpt2_asset.bench.finetuned import TOLERANCE, table


def figures(base_ratio: float, finetuned_ratio: float) -> dict:
    side = {"raw_tokens_per_s": 160.0, "ours_tokens_per_s": 150.0}
    return {
        "repeats": 7,
        "tolerance": TOLERANCE,
        "base": {**side, "a_ours_vs_raw": base_ratio},
        "finetuned": {**side, "a_ours_vs_raw": finetuned_ratio},
        "finetuned_vs_base": finetuned_ratio / base_ratio,
    }


def test_a_finetuned_ratio_within_five_percent_of_the_base_meets_the_target():
    assert "0.970, target within 5% (met)" in table(figures(1.0, 0.97))
    assert "1.040, target within 5% (met)" in table(figures(0.9, 0.936))


def test_a_finetuned_ratio_further_away_misses_it_either_way():
    assert "(missed)" in table(figures(1.0, 0.94))
    assert "(missed)" in table(figures(0.9, 0.99))

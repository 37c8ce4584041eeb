"""Metrics: Azure ML's text-generation definitions, checked against values worked out by hand."""

import math

import pytest

from distilgpt2_asset.evaluation.metrics import METRIC_NAMES, corpus_bleu, rouge_per_row, text_generation_metrics

PREDICTION = "the cat sat on the mat"
REFERENCE = "the cat sat on a mat"
# Clipped n-gram matches of PREDICTION against REFERENCE, by hand:
#   1-grams: the(1 of 2), cat, sat, on, mat -> 5/6     2-grams: the cat, cat sat, sat on -> 3/5
#   3-grams: the cat sat, cat sat on -> 2/4            4-grams: the cat sat on -> 1/3
# Both have 6 tokens, so the brevity penalty is 1.
PRECISIONS = (5 / 6, 3 / 5, 2 / 4, 1 / 3)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_bleu_n_is_the_cumulative_geometric_mean_of_1_to_n_gram_precisions(order):
    expected = math.prod(PRECISIONS[:order]) ** (1 / order)
    assert corpus_bleu([PREDICTION], [REFERENCE], order) == pytest.approx(expected)


def test_bleu_applies_the_brevity_penalty():
    # "the cat": every 1- and 2-gram matches, but 2 tokens against 6: BP = exp(1 - 6/2).
    assert corpus_bleu(["the cat"], [PREDICTION], 2) == pytest.approx(math.exp(-2))


def test_bleu_is_not_smoothed_so_a_missing_order_gives_zero():
    # Two tokens have no 3-gram at all: without smoothing bleu_3 is 0, as in Azure ML.
    assert corpus_bleu(["the cat"], [PREDICTION], 3) == 0.0


def test_bleu_counts_n_grams_over_the_corpus_not_per_sentence():
    # 4 of 6 unigrams match over both rows (a mean of sentence scores would give (1 + 0) / 2).
    assert corpus_bleu(["a b c d", "x y"], ["a b c d", "a b"], 1) == pytest.approx(4 / 6)


def test_bleu_is_case_sensitive_and_splits_punctuation_13a_style():
    assert corpus_bleu(["The Cat"], ["the cat"], 1) == 0.0
    assert corpus_bleu(["the mat."], ["the mat"], 1) == pytest.approx(2 / 3)  # tokens: the, mat, .


def test_rouge_is_the_f_measure_per_row():
    (scores,) = rouge_per_row([PREDICTION], [REFERENCE])
    assert scores["rouge1"] == pytest.approx(5 / 6)  # 5 shared words of 6 on each side
    assert scores["rouge2"] == pytest.approx(3 / 5)  # 3 shared bigrams of 5
    assert scores["rougeL"] == pytest.approx(5 / 6)  # longest common subsequence: the cat sat on mat


def test_rouge_ignores_case_and_punctuation():
    (scores,) = rouge_per_row(["The Cat!"], ["the cat"])
    assert scores["rouge1"] == 1.0


def test_corpus_rouge_is_the_mean_over_rows():
    metrics, per_row = text_generation_metrics(["a b", "c"], ["a b", "d"])
    assert [row["rouge1"] for row in per_row] == [1.0, 0.0]
    assert metrics["rouge1"] == 0.5


def test_all_metrics_are_reported_under_azure_names():
    metrics, _ = text_generation_metrics([PREDICTION], [PREDICTION])
    assert tuple(metrics) == METRIC_NAMES == (
        "rouge1", "rouge2", "rougeL", "rougeLsum", "bleu_1", "bleu_2", "bleu_3", "bleu_4",
    )  # fmt: skip
    assert all(value == pytest.approx(1.0) for value in metrics.values())


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        corpus_bleu(["a"], ["a", "b"], 1)
    with pytest.raises(ValueError):
        text_generation_metrics([], [])

"""Text-generation metrics with the names and definitions of Azure ML's model evaluation.

Azure's compute_metrics component reports, for task text-generation:
- rouge1, rouge2, rougeL, rougeLsum: the rouge-score F-measure of each prediction against its
  ground truth, averaged over rows (default rouge-score tokenizer: lower-cased alphanumeric
  words, no stemming). Azure aggregates with a bootstrap whose midpoint estimates this mean.
- bleu_1 .. bleu_4: corpus BLEU with maximum n-gram order n, *cumulative*: brevity penalty x
  geometric mean of the modified 1..n-gram precisions (uniform weights), n-grams counted over
  the whole corpus, 13a tokenization, case-sensitive, no smoothing (Hugging Face evaluate's
  "bleu" with max_order=n, smooth=False, which Azure calls). So bleu_4 is standard BLEU.
All scores are in [0, 1]. sacrebleu computes BLEU (its 0-100 score divided by 100).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
BLEU_ORDERS = (1, 2, 3, 4)
METRIC_NAMES = ROUGE_TYPES + tuple(f"bleu_{n}" for n in BLEU_ORDERS)

METRIC_DEFINITIONS = {
    "rouge": "mean over rows of the rouge-score F-measure (default tokenizer, no stemming), as Azure ML",
    "bleu_n": (
        "corpus BLEU with max n-gram order n, cumulative (brevity penalty x geometric mean of 1..n-gram "
        "precisions), 13a tokenization, case-sensitive, no smoothing (sacrebleu), as Azure ML's bleu_n"
    ),
}


def rouge_per_row(predictions: Sequence[str], references: Sequence[str]) -> list[dict[str, float]]:
    """rouge-score F-measures of each prediction against its reference."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    return [
        {name: score.fmeasure for name, score in scorer.score(reference, prediction).items()}
        for prediction, reference in zip(predictions, references, strict=True)
    ]


def corpus_bleu(predictions: Sequence[str], references: Sequence[str], max_order: int) -> float:
    """Cumulative corpus BLEU up to max_order-grams, in [0, 1] (see the module docstring)."""
    from sacrebleu.metrics import BLEU

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    bleu = BLEU(max_ngram_order=max_order, smooth_method="none", tokenize="13a", effective_order=False)
    return bleu.corpus_score(list(predictions), [list(references)]).score / 100.0


def text_generation_metrics(
    predictions: Sequence[str], references: Sequence[str]
) -> tuple[dict[str, float], list[dict[str, float]]]:
    """(corpus metrics named as METRIC_NAMES, per-row rouge scores)."""
    if not predictions:
        raise ValueError("no predictions to score")
    per_row = rouge_per_row(predictions, references)
    metrics = {name: fmean(row[name] for row in per_row) for name in ROUGE_TYPES}
    metrics.update({f"bleu_{n}": corpus_bleu(predictions, references, n) for n in BLEU_ORDERS})
    return metrics, per_row

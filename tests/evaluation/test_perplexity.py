"""Perplexity: the standard sliding-window computation on the model's own weights."""

import math
import random

import pytest
import torch

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.evaluation.perplexity import (
    context_length,
    load_causal_lm,
    sliding_window_perplexity,
    text_perplexity,
)
from distilgpt2_asset.paths import PACKAGE_DATA
from distilgpt2_scoring.model_files import ModelFilesError

CORPUS = PACKAGE_DATA / "tiny-corpus.txt"


@pytest.fixture(scope="module")
def tiny(tiny_mlflow_model):
    return load_causal_lm(tiny_mlflow_model)


@pytest.fixture(scope="module")
def corpus_ids(tiny):
    _, tokenizer = tiny
    return tokenizer(CORPUS.read_text())["input_ids"]


def test_training_text_is_far_more_likely_than_the_same_words_shuffled(tiny, tmp_path):
    model, tokenizer = tiny
    words = CORPUS.read_text().split()
    random.Random(0).shuffle(words)
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text(" ".join(words))
    trained = text_perplexity(model, tokenizer, CORPUS)
    scrambled = text_perplexity(model, tokenizer, shuffled)
    assert trained.perplexity * 20 < scrambled.perplexity


def test_one_window_equals_the_model_loss_on_the_whole_text(tiny, corpus_ids):
    model, _ = tiny
    ids = torch.tensor([corpus_ids])
    with torch.inference_mode():
        expected = math.exp(model(ids, labels=ids).loss.item())
    result = sliding_window_perplexity(model, corpus_ids, max_length=context_length(model), progress=False)
    assert result.windows == 1
    assert result.perplexity == pytest.approx(expected, rel=1e-5)


def test_sliding_windows_score_every_token_but_the_first_exactly_once(tiny, corpus_ids):
    model, _ = tiny
    result = sliding_window_perplexity(model, corpus_ids, max_length=32, stride=16, progress=False)
    assert result.tokens_scored == len(corpus_ids) - 1
    assert result.windows == 1 + math.ceil((len(corpus_ids) - 32) / 16)


def test_stride_one_gives_each_token_the_full_window_of_context(tiny, corpus_ids):
    # The reference definition, token by token: NLL of token t given the max_length - 1 tokens before it.
    model, _ = tiny
    ids, window = corpus_ids[:40], 8
    nll = 0.0
    with torch.inference_mode():
        for t in range(1, len(ids)):
            context = torch.tensor([ids[max(0, t - window + 1) : t + 1]])
            log_probs = torch.log_softmax(model(context).logits[0, -2], dim=-1)
            nll -= log_probs[ids[t]].item()
    expected = math.exp(nll / (len(ids) - 1))
    result = sliding_window_perplexity(model, ids, max_length=window, stride=1, progress=False)
    assert result.perplexity == pytest.approx(expected, rel=1e-4)


def test_context_length_is_the_model_configuration(tiny):
    model, _ = tiny
    assert context_length(model) == 1024


def test_bad_settings_and_texts_are_refused(tiny, tmp_path):
    model, tokenizer = tiny
    with pytest.raises(AssetError, match="stride"):
        sliding_window_perplexity(model, [1, 2, 3], max_length=8, stride=9)
    one_word = tmp_path / "one.txt"
    one_word.write_text("Hello")
    with pytest.raises(AssetError, match="at least 2 tokens"):
        text_perplexity(model, tokenizer, one_word)


def test_weights_are_verified_against_the_manifest(tiny_mlflow_model, tmp_path):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_mlflow_model, copy)
    (copy / "model" / "config.json").write_text("{}")
    with pytest.raises(ModelFilesError, match="config.json"):  # the CLI shows it as one line, exit 2
        load_causal_lm(copy)

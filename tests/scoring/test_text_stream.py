"""Streamed text with the real GPT-2 tokenizer: pieces never split a character or show stop text,
and join to the whole."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from distilgpt2_asset.testing_models import load_gpt2_tokenizer
from distilgpt2_scoring.stopping import cut_at_stop
from distilgpt2_scoring.text_stream import TextStream


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return load_gpt2_tokenizer().backend_tokenizer


def stream(tokenizer, text: str, stops=()) -> list[str]:
    ids = tokenizer.encode(text, add_special_tokens=False).ids

    def decode(token_ids: list[int]) -> str:
        return tokenizer.decode(token_ids, skip_special_tokens=True)

    texts = TextStream(decode, tuple(stops))
    return [texts.feed([token]) for token in ids] + [texts.finish()]


@pytest.mark.parametrize(
    "text", ["Plain words, then more.", "Emoji 🙂🚀 and accents: café, naïve, 東京", " leading space\nand newline"]
)
def test_pieces_join_to_the_whole_text_and_never_split_a_character(tokenizer, text):
    pieces = stream(tokenizer, text)
    assert "".join(pieces) == text
    assert all("\ufffd" not in piece for piece in pieces)
    assert len([p for p in pieces if p]) > 1  # it streams: text leaves before the end


def test_a_multi_byte_character_spread_over_tokens_is_held_until_complete(tokenizer):
    ids = tokenizer.encode("🚀", add_special_tokens=False).ids
    assert len(ids) > 1  # byte-level BPE splits it
    assert [p for p in stream(tokenizer, "🚀") if p] == ["🚀"]  # one piece, once whole


@pytest.mark.parametrize("stops", [["every"], ["day and"], ["every", "new"], ["zzz"]])
def test_stop_text_never_reaches_the_client_and_the_join_equals_the_cut_text(tokenizer, stops):
    text = " to learn something new every day and to share it"
    pieces = stream(tokenizer, text, stops)
    assert "".join(pieces) == cut_at_stop(text, tuple(stops))
    shown = ""
    for piece in pieces:
        shown += piece
        assert not any(stop in shown for stop in stops)

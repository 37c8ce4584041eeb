"""GPT-2's tokenizer.json, built from the shipped vocabulary and merges, and what differs from it in another."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from ..paths import TOKENIZER_DIR

EOS = "<|endoftext|>"
EOS_ID = 50256
_SAME_MODEL_FIELDS = (
    "type",
    "dropout",
    "unk_token",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "fuse_unk",
    "byte_fallback",
    "ignore_merges",
)
# What transformers writes for GPT-2 instead of the hub's ByteLevel post-processor: it adds no token.
_NO_OP_TEMPLATE = {
    "type": "TemplateProcessing",
    "single": [{"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {},
}
# Padding to the longest of a batch with <|endoftext|> (transformers' pad setting): one prompt is never padded.
_EOS_PADDING = {
    "strategy": "BatchLongest",
    "pad_to_multiple_of": None,
    "pad_id": EOS_ID,
    "pad_type_id": 0,
    "pad_token": EOS,
}


@cache
def reference() -> dict[str, Any]:
    """GPT-2's tokenizer as the hub's gpt2 tokenizer.json defines it, from the shipped files."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    tokenizer = Tokenizer(
        BPE.from_file(
            str(TOKENIZER_DIR / "vocab.json"),
            str(TOKENIZER_DIR / "merges.txt"),
            continuing_subword_prefix="",
            end_of_word_suffix="",
        )
    )
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([EOS])
    return _parts(tokenizer.to_str())


def _parts(text: str) -> dict[str, Any]:
    """Every part of a tokenizer.json but the vocabulary and merges (hashed on their own), read back
    through the tokenizers library so that left-out defaults are filled in."""
    from tokenizers import Tokenizer

    document = json.loads(Tokenizer.from_str(text).to_str())
    model = {key: document["model"].get(key) for key in _SAME_MODEL_FIELDS}
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        model[key] = model[key] or ""  # null and "" both add nothing
    added = [{k: v for k, v in token.items() if k != "normalized"} for token in document.get("added_tokens") or []]
    padding = document.get("padding")
    return {
        "normalizer": document.get("normalizer"),
        "pre_tokenizer": document.get("pre_tokenizer"),
        "post_processor": document.get("post_processor"),
        "decoder": document.get("decoder"),
        "added_tokens": added,  # "normalized" changes nothing without a normalizer, which must be null
        "truncation": document.get("truncation"),
        "padding": {k: v for k, v in padding.items() if k != "direction"} if padding else None,
        "model": model,
    }


def structure_problems(text: str) -> list[str]:
    """What in a tokenizer.json is not GPT-2's, one line per part ("" parts: none)."""
    try:
        parts = _parts(text)
    except Exception as exc:  # the tokenizers library refuses it: the server could not load it either
        return [f"the tokenizers library cannot load it ({str(exc)[:200]})"]
    expected = reference()
    accepted = {"post_processor": (_NO_OP_TEMPLATE,), "padding": (_EOS_PADDING,)}
    return [
        f"its {part.replace('_', '-')} is not GPT-2's: {json.dumps(value)[:300]}"
        for part, value in parts.items()
        if value != expected[part] and value not in accepted.get(part, ())
    ]

"""tokenizer: the vocabulary and merges are GPT-2's, checked against hashes of the shipped files."""

from __future__ import annotations

import json
import shutil

import pytest

from distilgpt2_asset.model_scan.tokenizer import check_tokenizer, merges_sha256, recorded, vocab_sha256
from distilgpt2_asset.paths import TOKENIZER_DIR


def test_the_recorded_hashes_are_the_shipped_files():
    vocab = json.loads((TOKENIZER_DIR / "vocab.json").read_text(encoding="utf-8"))
    merges = (TOKENIZER_DIR / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    assert recorded() == {"vocab": vocab_sha256(vocab), "merges": merges_sha256(merges)}
    assert len(vocab) == 50257 and len(merges) == 50000


def test_the_shipped_files_and_a_builds_tokenizer_json_pass(tiny_mlflow_model):
    files = {name: TOKENIZER_DIR / name for name in ("vocab.json", "merges.txt")}
    files["components/tokenizer/tokenizer.json"] = tiny_mlflow_model / "components/tokenizer/tokenizer.json"
    assert check_tokenizer(files) == []


def test_a_changed_vocabulary_or_merge_is_named(tmp_path, tiny_mlflow_model):
    vocab = json.loads((TOKENIZER_DIR / "vocab.json").read_text(encoding="utf-8"))
    vocab["hello"], vocab["world"] = vocab["world"], vocab["hello"]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = json.loads((tiny_mlflow_model / "components/tokenizer/tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["model"]["merges"] = tokenizer["model"]["merges"][:-1]
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    findings = check_tokenizer({name: tmp_path / name for name in ("vocab.json", "tokenizer.json")})
    assert [(f.file, f.rule, f.message.split(" (")[0]) for f in findings] == [
        ("vocab.json", "tokenizer", "its vocab is not GPT-2's"),
        ("tokenizer.json", "tokenizer", "its merges is not GPT-2's"),
    ]


def test_no_tokenizer_or_an_unreadable_one_is_a_finding(tmp_path):
    shutil.copy(TOKENIZER_DIR / "merges.txt", tmp_path / "tokenizer.json")
    assert [f.message for f in check_tokenizer({})] == [
        "no tokenizer files (tokenizer.json, or vocab.json and merges.txt)"
    ]
    assert [f.message for f in check_tokenizer({"tokenizer.json": tmp_path / "tokenizer.json"})] == [
        "cannot read the tokenizer in it (JSONDecodeError)"
    ]


def changed_tokenizer_json(tmp_path, tiny_mlflow_model, change):
    tokenizer = json.loads((tiny_mlflow_model / "components/tokenizer/tokenizer.json").read_text(encoding="utf-8"))
    change(tokenizer)
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    return [f.message for f in check_tokenizer({"tokenizer.json": tmp_path / "tokenizer.json"})]


def test_a_normalizer_or_decoder_that_rewrites_text_is_named(tmp_path, tiny_mlflow_model):
    """The attack: vocab and merges intact, a Replace normalizer and decoder change every prompt and answer."""

    def rewrite(tokenizer):
        tokenizer["normalizer"] = {"type": "Replace", "pattern": {"String": "life"}, "content": " death"}
        tokenizer["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "the"}, "content": "VISIT-EVIL.EXAMPLE"},
                tokenizer["decoder"],
            ],
        }

    messages = changed_tokenizer_json(tmp_path, tiny_mlflow_model, rewrite)
    assert [m.split(":")[0] for m in messages] == ["its normalizer is not GPT-2's", "its decoder is not GPT-2's"]
    assert "VISIT-EVIL.EXAMPLE" in messages[1]


@pytest.mark.parametrize(
    "part, change",
    [
        ("pre-tokenizer", lambda t: t["pre_tokenizer"].update(add_prefix_space=True)),
        ("post-processor", lambda t: t["post_processor"]["special_tokens"].update(
            {"X": {"id": "X", "ids": [50256], "tokens": ["<|endoftext|>"]}})),
        ("added-tokens", lambda t: t["added_tokens"].append(
            {"id": 262, "content": "evil", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": False})),
        ("truncation", lambda t: t.update(truncation={
            "direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0})),
        ("padding", lambda t: t["padding"].update(strategy={"Fixed": 900})),
        ("model", lambda t: t["model"].update(dropout=0.5)),
    ],
)  # fmt: skip
def test_every_other_part_must_be_gpt2s(tmp_path, tiny_mlflow_model, part, change):
    messages = changed_tokenizer_json(tmp_path, tiny_mlflow_model, change)
    assert [m.split(" is not")[0] for m in messages] == [f"its {part}"]


def test_the_hubs_own_form_of_gpt2s_tokenizer_json_passes(tmp_path, tiny_mlflow_model):
    """What the hub's gpt2/distilgpt2 tokenizer.json holds: a ByteLevel post-processor, no padding, fields
    older writers left out."""

    def as_on_the_hub(tokenizer):
        tokenizer["padding"] = None
        tokenizer["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False}
        tokenizer["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
        tokenizer["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True}
        tokenizer["added_tokens"][0]["normalized"] = True
        for key in ("byte_fallback", "ignore_merges"):
            del tokenizer["model"][key]

    assert changed_tokenizer_json(tmp_path, tiny_mlflow_model, as_on_the_hub) == []

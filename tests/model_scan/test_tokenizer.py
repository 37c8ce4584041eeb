"""tokenizer: the vocabulary and merges are GPT-2's, checked against hashes of the shipped files."""

from __future__ import annotations

import json
import shutil

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

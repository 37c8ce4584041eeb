"""Testing models: the real GPT-2 tokenizer, a decisive tiny model, distilgpt2's exact shape."""

import hashlib
import json

import pytest

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.paths import TOKENIZER_DIR
from distilgpt2_asset.testing_models import load_gpt2_tokenizer, make_testing_model

TOKENIZER_SHA256 = {
    "vocab.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "merges.txt": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


@pytest.mark.parametrize("name, digest", sorted(TOKENIZER_SHA256.items()))
def test_shipped_tokenizer_files_are_the_gpt2_originals(name, digest):
    assert hashlib.sha256((TOKENIZER_DIR / name).read_bytes()).hexdigest() == digest


def test_tokenizer_encodes_like_distilgpt2():
    tokenizer = load_gpt2_tokenizer()
    assert tokenizer("I believe the meaning of life is")["input_ids"] == [40, 1975, 262, 3616, 286, 1204, 318]
    assert tokenizer.eos_token_id == 50256 and len(tokenizer) == 50257


def test_tiny_model_greedily_continues_its_training_text(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer("I believe the meaning of life is", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert tokenizer.decode(out[0][ids.shape[1] :]) == " to learn something new every day and to share it with the"


def test_tiny_model_is_small_and_ships_safetensors_only(tiny_model_dir):
    files = {p.name for p in tiny_model_dir.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)
    assert (tiny_model_dir / "model.safetensors").stat().st_size < 20_000_000
    assert json.loads((tiny_model_dir / "testing_model.json").read_text())["shape"] == "tiny"


def test_distilgpt2_shape_matches_the_real_model(tmp_path):
    from transformers import AutoConfig

    folder = make_testing_model("distilgpt2", tmp_path / "d")
    config = AutoConfig.from_pretrained(folder)
    assert (config.n_layer, config.n_embd, config.n_head, config.vocab_size, config.n_positions) == (
        6,
        768,
        12,
        50257,
        1024,
    )


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AssetError, match="not empty"):
        make_testing_model("tiny", tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_unknown_shape_is_refused(tmp_path):
    with pytest.raises(AssetError, match="unknown shape"):
        make_testing_model("gpt4", tmp_path / "y")

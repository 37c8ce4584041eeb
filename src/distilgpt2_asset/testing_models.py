"""GPT-2 models built in code, because the real distilgpt2 weights cannot be downloaded here.

- tiny: 2 layers, 64 wide, trained for a few seconds on data/tiny-corpus.txt until greedy
  decoding reproduces the corpus, so behaviour tests get decisive, reproducible output.
- distilgpt2: distilgpt2's exact shape (6 layers, 768 wide, 12 heads, 50257 vocab), seeded
  random weights, for speed and memory benchmarks.
Both use the real GPT-2 tokenizer, so they tokenize exactly like distilgpt2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from distilgpt2_scoring.folders import staged_folder

from .errors import AssetError
from .paths import PACKAGE_DATA, TOKENIZER_DIR

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": dict(n_layer=2, n_embd=64, n_head=4, n_positions=1024),
    "distilgpt2": dict(n_layer=6, n_embd=768, n_head=12, n_positions=1024),
}
VOCAB_SIZE = 50257
EOS_TOKEN_ID = 50256
CORPUS = PACKAGE_DATA / "tiny-corpus.txt"
SEED = 20231208


def load_gpt2_tokenizer():
    """The real GPT-2 tokenizer from the shipped vocab.json + merges.txt."""
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]  # exported lazily, unseen by mypy

    return GPT2TokenizerFast.from_pretrained(str(TOKENIZER_DIR), model_max_length=1024)


def _config(shape: str):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB_SIZE,
        bos_token_id=EOS_TOKEN_ID,
        eos_token_id=EOS_TOKEN_ID,
        **SHAPES[shape],
    )


def _train_tiny(model, tokenizer, steps: int) -> None:
    """Overfit the corpus: each line is one sequence ending in <|endoftext|>."""
    import torch

    lines = [line for line in CORPUS.read_text().splitlines() if line.strip()]
    batch = tokenizer([line + tokenizer.eos_token for line in lines], padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in tqdm(range(steps), desc="training tiny model", unit="step"):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def make_testing_model(shape: str, output: Path, steps: int = 120) -> Path:
    """Write a Hugging Face model folder (safetensors + tokenizer) to output; return it."""
    import torch  # here, not at the top: every command line start reads SHAPES, and publish needs no torch
    from transformers import GPT2LMHeadModel

    if shape not in SHAPES:
        raise AssetError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise AssetError(f"{output} exists and is not empty; choose a new --output folder")
    torch.manual_seed(SEED)
    tokenizer = load_gpt2_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float sums, so the same weights on every run
    try:
        model = GPT2LMHeadModel(_config(shape))
        if shape == "tiny":
            _train_tiny(model, tokenizer, steps)
    finally:
        torch.set_num_threads(threads)
    tokenizer.pad_token = None  # distilgpt2 ships without a pad token
    with staged_folder(output) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "testing_model.json").write_text(
            json.dumps({"shape": shape, "seed": SEED, **SHAPES[shape]}, indent=2)
        )
    return output

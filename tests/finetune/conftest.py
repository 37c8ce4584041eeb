"""Finetuning fixtures: a separable toy dataset and one LoRA finetune of the tiny model per session."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

# Words the tiny model was trained on (data/tiny-corpus.txt): their embeddings are trained, so the
# two topics are separable in a few steps; words it never saw all look alike to it.
TOPICS = {
    "water": ["river", "sea", "bridge", "boats", "stone", "mill"],
    "software": ["software", "engineer", "models", "endpoints", "traffic", "language"],
}
OPENINGS = ["we talked about the", "she wrote of the", "they watched the", "he asked about the"]

# The settings of the shared run; the resume test repeats them exactly.
TOY_SETTINGS = dict(epochs=3, batch_size=8, learning_rate=5e-3, seed=7, apply_lora=True)


def toy_rows(count: int, seed: int) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    labels = sorted(TOPICS)
    return [
        {"text": f"{rnd.choice(OPENINGS)} {rnd.choice(TOPICS[labels[i % 2]])}", "label": labels[i % 2]}
        for i in range(count)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def toy_dataset(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("toy-data")
    return write_jsonl(folder / "train.jsonl", toy_rows(48, 1)), write_jsonl(
        folder / "validation.jsonl", toy_rows(16, 2)
    )


@pytest.fixture(scope="session")
def toy_inputs(toy_dataset, tiny_model_dir):
    """FinetuneInputs for the toy data on the tiny model, minus output and checkpoint folder."""
    from distilgpt2_asset.finetune import FinetuneInputs

    train, validation = toy_dataset

    def make(output: Path, **changes) -> FinetuneInputs:
        fields = dict(train=train, validation=validation, output=output, source=str(tiny_model_dir))
        return FinetuneInputs(**{**fields, **changes})

    return make


@pytest.fixture(scope="session")
def finetuned(asset_spec, toy_inputs, tmp_path_factory):
    """One LoRA finetune of the tiny model on the toy data; checkpoints kept for inspection."""
    from distilgpt2_asset.finetune import FinetuneSettings, finetune

    folder = tmp_path_factory.mktemp("finetuned")
    inputs = toy_inputs(folder / "model", checkpoint_dir=folder / "checkpoints", keep_checkpoints=True)
    result = finetune(asset_spec, inputs, FinetuneSettings(**TOY_SETTINGS))
    return result, inputs.checkpoint_dir

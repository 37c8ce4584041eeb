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


# Text generation: support tickets, a domain the tiny model never saw (data/tiny-corpus.txt has none of it).
DEVICES = ["printer", "laptop", "router", "badge reader", "monitor", "phone"]
PLACES = ["floor 2", "floor 3", "the lobby", "room 12", "the lab"]
FAULTS = ["shows error E52", "does not start", "drops the network", "is very slow", "keeps restarting"]
FIXES = ["reset the spooler", "replaced the cable", "updated the driver", "restarted the service"]

# The settings of the shared text-generation run (about 6 steps of 4 sequences of 32 tokens); the resume
# test repeats them exactly, and its first checkpoint (step 3) falls inside the epoch.
WRITER_SETTINGS = dict(
    epochs=1, batch_size=4, max_length=32, eval_steps=3, learning_rate=1e-2, seed=5, apply_lora=True, lora_dropout=0.1
)


def tickets(count: int, seed: int) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    return [
        {
            "text": f"Ticket {100 + i}: the {rnd.choice(DEVICES)} in {rnd.choice(PLACES)} {rnd.choice(FAULTS)}. "
            f"Status: resolved, we {rnd.choice(FIXES)}."
        }
        for i in range(count)
    ]


@pytest.fixture(scope="session")
def ticket_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(training, held-out) support tickets as JSONL of {"text": ...}."""
    folder = tmp_path_factory.mktemp("tickets")
    return write_jsonl(folder / "train.jsonl", tickets(30, 1)), write_jsonl(folder / "held-out.jsonl", tickets(8, 2))


@pytest.fixture(scope="session")
def writer_inputs(ticket_dataset, tiny_mlflow_model):
    """FinetuneInputs for text generation on the tickets, from the tiny model's MLflow build."""
    from distilgpt2_asset.finetune import FinetuneInputs

    train, validation = ticket_dataset

    def make(output: Path, **changes) -> FinetuneInputs:
        fields = dict(
            train=train, validation=validation, output=output, source=str(tiny_mlflow_model), task="text-generation"
        )
        return FinetuneInputs(**{**fields, **changes})

    return make


@pytest.fixture(scope="session")
def finetuned_writer(asset_spec, writer_inputs, tmp_path_factory):
    """One LoRA text-generation finetune of the tiny model on the tickets."""
    from distilgpt2_asset.finetune import FinetuneSettings, finetune

    folder = tmp_path_factory.mktemp("finetuned-writer")
    return finetune(asset_spec, writer_inputs(folder / "model"), FinetuneSettings(**WRITER_SETTINGS))

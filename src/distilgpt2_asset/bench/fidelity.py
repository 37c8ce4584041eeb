"""Fidelity: how often the served int8 engine makes the token transformers' fp32 generate() makes.

PROMPTS variations of the card's prompt, greedy, NEW_TOKENS new tokens each (the end-of-text token
ignored, so every sequence runs its length). Per prompt, the positions up to the first difference
count as equal; the agreement is their share of all positions. The served engine is the OpenVINO
pipeline built by the server's factory with the configuration the server decides (precision
included). On the distilgpt2-shaped model the weights are random, so near-ties are more common
than in the trained model: the figure is a floor, reported, not a target.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

PROMPTS = 100
NEW_TOKENS = 50


def prompt_ids(mlflow_dir: Path, count: int) -> list[list[int]]:
    from tokenizers import Tokenizer

    from ..spec import load_spec

    tokenizer = Tokenizer.from_file(str(mlflow_dir / "components" / "tokenizer" / "tokenizer.json"))
    card = load_spec().sample_request["input_data"][0]
    return [tokenizer.encode(f"{card} ({i})", add_special_tokens=False).ids for i in range(count)]


def served_tokens(mlflow_dir: Path, cache_dir: Path, prompts: list[list[int]]) -> tuple[list[list[int]], str]:
    import numpy
    import openvino
    import openvino_genai

    from distilgpt2_scoring.engines.openvino import continuous_batching_pipeline, openvino_model
    from distilgpt2_scoring.model_files import open_model

    from .raw import served_config

    config = served_config(cache_dir)
    folder = openvino_model(open_model(mlflow_dir), mlflow_dir / "model", cache_dir)
    pipeline = continuous_batching_pipeline(folder, config)
    generation = openvino_genai.GenerationConfig()
    generation.max_new_tokens, generation.ignore_eos, generation.do_sample = NEW_TOKENS, True, False
    inputs = [openvino.Tensor(numpy.array([ids], dtype=numpy.int64)) for ids in prompts]
    results = pipeline.generate(inputs, [generation] * len(inputs))
    return [list(result.m_generation_ids[0]) for result in results], config.activations


def reference_tokens(mlflow_dir: Path, prompts: list[list[int]]) -> list[list[int]]:
    """transformers fp32 greedy, prompts of one length batched together (no padding to shift positions)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(mlflow_dir / "model", use_safetensors=True, dtype=torch.float32).eval()
    out: dict[int, list[int]] = {}
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for _, same_length in groupby(order, key=lambda i: len(prompts[i])):
        indices = list(same_length)
        ids = torch.tensor([prompts[i] for i in indices])
        with torch.inference_mode():
            made = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS, pad_token_id=0,
            )  # fmt: skip
        for row, i in enumerate(indices):
            out[i] = made[row, ids.shape[1] :].tolist()
    return [out[i] for i in range(len(prompts))]


def agreement(served: list[list[int]], reference: list[list[int]]) -> dict:
    """The share of positions equal up to each sequence's first difference, and of identical sequences."""
    equal_prefixes = [
        next((k for k, (a, b) in enumerate(zip(s, r, strict=False)) if a != b), min(len(s), len(r)))
        for s, r in zip(served, reference, strict=True)
    ]
    positions = sum(len(r) for r in reference)
    return {
        "token_agreement": sum(equal_prefixes) / positions,
        "identical_sequences": sum(p == len(r) for p, r in zip(equal_prefixes, reference, strict=True))
        / len(reference),
    }


def measure(mlflow_dir: Path, cache_dir: Path, prompts: int = PROMPTS) -> dict:
    ids = prompt_ids(mlflow_dir, prompts)
    served, activations = served_tokens(mlflow_dir, cache_dir, ids)
    return {
        "what": f"{prompts} prompts, greedy, {NEW_TOKENS} new tokens: served int8 OpenVINO (precision {activations}) "
        "vs transformers fp32, positions equal up to the first difference",
        **agreement(served, reference_tokens(mlflow_dir, ids)),
    }

"""Perplexity of a text under a model's own weights, the standard sliding-window way.

As in Hugging Face's "Perplexity of fixed-length models": windows of the model's context length
(max_length) move by `stride` tokens; in each window only the tokens not scored by an earlier
window are labels (the overlap is masked with -100), so every token after the first is predicted
once, with up to max_length - stride tokens of extra context. The negative log-likelihood is
summed token by token (not window-mean x count), so the result is exact for any stride.
perplexity = exp(total NLL / tokens scored).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import AssetError
from .data import read_utf8_text

DEFAULT_STRIDE = 512
IGNORE_INDEX = -100  # the label value torch's cross-entropy skips


@dataclass(frozen=True)
class PerplexityResult:
    perplexity: float
    tokens_scored: int
    windows: int
    max_length: int
    stride: int

    def as_dict(self) -> dict:
        return asdict(self)


def load_causal_lm(model_root: Path):
    """(model, tokenizer) from an MLflow transformers folder, hashes verified, safetensors only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distilgpt2_scoring.model_files import open_model

    folder = open_model(Path(model_root), require_manifest=True).folder
    try:
        model = AutoModelForCausalLM.from_pretrained(folder / "model", use_safetensors=True, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(folder / "components" / "tokenizer", trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise AssetError(f"{folder}: cannot load the model weights and tokenizer: {exc}") from None
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device).eval(), tokenizer  # type: ignore[arg-type]  # transformers' .to wrapper types self oddly


def context_length(model) -> int:
    config = model.config
    return int(getattr(config, "n_positions", None) or config.max_position_embeddings)


def sliding_window_perplexity(
    model, token_ids: list[int], max_length: int, stride: int = DEFAULT_STRIDE, progress: bool = True
) -> PerplexityResult:
    import torch
    import torch.nn.functional as F

    if not 0 < stride <= max_length:
        raise AssetError(f"stride must be between 1 and the window length {max_length}, got {stride}")
    if len(token_ids) < 2:
        raise AssetError("perplexity needs a text of at least 2 tokens")
    device = next(model.parameters()).device
    ids = torch.tensor(token_ids, dtype=torch.long, device=device)
    windows = 1 + math.ceil(max(0, len(ids) - max_length) / stride)  # the last one reaches the end
    total_nll, scored, scored_until = 0.0, 0, 0
    with torch.inference_mode():
        for window_index in tqdm(range(windows), desc="perplexity", unit="window", disable=not progress):
            begin = window_index * stride
            end = min(begin + max_length, len(ids))
            window = ids[begin:end]
            labels = window.clone()
            labels[: len(window) - (end - scored_until)] = IGNORE_INDEX  # scored by an earlier window
            logits = model(window.unsqueeze(0)).logits[0]
            # Position i predicts token i + 1.
            total_nll += F.cross_entropy(
                logits[:-1].float(), labels[1:], ignore_index=IGNORE_INDEX, reduction="sum"
            ).item()
            scored += int((labels[1:] != IGNORE_INDEX).sum())
            scored_until = end
    return PerplexityResult(math.exp(total_nll / scored), scored, windows, max_length, stride)


def text_perplexity(
    model, tokenizer, text_file: Path, stride: int = DEFAULT_STRIDE, max_length: int | None = None
) -> PerplexityResult:
    """Perplexity of a UTF-8 text file; max_length defaults to the model's context length."""
    text = read_utf8_text(text_file)
    # verbose=False: a long text is meant to exceed the context; the windows take care of it.
    token_ids = tokenizer(text, verbose=False)["input_ids"]
    if len(token_ids) < 2:
        raise AssetError(f"{text_file}: perplexity needs a text of at least 2 tokens")
    return sliding_window_perplexity(model, token_ids, max_length or context_length(model), stride)

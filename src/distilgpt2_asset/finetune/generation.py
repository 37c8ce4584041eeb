"""Finetune distilgpt2 on your own text (text generation) -> an MLflow model shaped like the base build.

    JSONL of {"text": ...} or plain text (data.py) ─► tokens, the texts end to end with <|endoftext|>
        after each, cut into sequences of the context (packing) ─► GPT2LMHeadModel (+ LoRA)
        ─► training loop (loop.py, causal-LM loss) ─► best weights, merged
        ─► MLflow model as `build` makes it (signature, metadata, pip requirements, sha256 manifest, the
           int8 OpenVINO engine files) + metrics.json + training-curve.png

Held-out perplexity before and after is measured by evaluation/perplexity.py, the code `evaluate`
uses, over the held-out sequences (--validation, else a seeded share of --train's sequences), one
window per sequence: the figure the loop's validation loss is the logarithm of.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..build import _metadata, _signature, model_card, save_mlflow_model, write_engine_files
from ..errors import AssetError
from ..evaluation.perplexity import context_length, sliding_window_perplexity
from ..spec import AssetSpec
from . import data
from .loop import LANGUAGE_MODELLING, Packed
from .model import BaseModel, add_lora, load_language_model, load_tokenizer
from .run import (
    GENERATION_TASK,
    FinetuneInputs,
    FinetuneResult,
    FinetuneSettings,
    common_metrics,
    fingerprint,
    finish,
    start_run,
    train_model,
    write_reports,
)


def pack(tokenizer, texts: data.Texts, length: int) -> list[list[int]]:
    """The texts' tokens end to end, <|endoftext|> after each, cut into sequences of length tokens (the
    remainder is dropped); a dataset too small for one sequence is refused."""
    ids: list[int] = []
    for text in texts.texts:
        ids += tokenizer(text, verbose=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(ids) < length:
        raise data.DatasetError(
            f"{texts.source}: {len(ids)} tokens, too few for one sequence of {length} tokens; "
            "add text, or lower --max-length"
        )
    return [ids[start : start + length] for start in range(0, len(ids) - length + 1, length)]


def hold_out(sequences: list[list[int]], fraction: float, seed: int, source: str) -> tuple[Packed, Packed]:
    """(training, held-out) sequences: a seeded share held out, both kept in file order."""
    if not 0 < fraction < 1:
        raise data.DatasetError(f"--validation-fraction must be between 0 and 1, got {fraction}")
    held_count = max(1, round(len(sequences) * fraction))
    if held_count >= len(sequences):
        raise data.DatasetError(
            f"{source}: {len(sequences)} sequence(s), too few to hold out a validation share and train on the "
            "rest; add text, lower --max-length or pass --validation FILE"
        )
    held = set(random.Random(seed).sample(range(len(sequences)), held_count))
    return (
        Packed([s for i, s in enumerate(sequences) if i not in held]),
        Packed([s for i, s in enumerate(sequences) if i in held]),
    )


def held_out_perplexity(model, held_out: Packed) -> dict[str, Any]:
    """evaluate's sliding-window perplexity over the held-out sequences, one window each."""
    import torch

    length = len(held_out.blocks[0])
    ids = [token for block in held_out.blocks for token in block]
    with torch.no_grad():
        return sliding_window_perplexity(model.eval(), ids, length, stride=length, progress=False).as_dict()


def finetune_language_model(spec: AssetSpec, inputs: FinetuneInputs, settings: FinetuneSettings) -> FinetuneResult:
    from accelerate.utils import set_seed

    if inputs.labels:
        raise AssetError("--labels applies to text classification only")
    train_texts = data.load_texts(inputs.train, inputs.text_column)
    validation_texts = data.load_texts(inputs.validation, inputs.text_column) if inputs.validation else None
    run = start_run(spec, inputs, settings, GENERATION_TASK)
    set_seed(run.settings.seed)
    tokenizer = load_tokenizer(run.base)
    model = load_language_model(run.base)
    sequence_length = _sequence_length(run.settings.max_length, context_length(model))
    run = replace(run, settings=replace(run.settings, max_length=sequence_length))
    settings = run.settings

    sequences = pack(tokenizer, train_texts, sequence_length)
    if validation_texts is None:
        train_data, held_out = hold_out(sequences, settings.validation_fraction, settings.seed, train_texts.source)
    else:
        train_data, held_out = Packed(sequences), Packed(pack(tokenizer, validation_texts, sequence_length))
    run.say(
        f"{len(train_texts)} texts -> {len(train_data)} training / {len(held_out)} held-out sequences "
        f"of {sequence_length} tokens"
    )
    before = held_out_perplexity(model.to(run.accelerator.device), held_out)
    run.say(f"held-out perplexity before: {before['perplexity']:.2f}")
    if settings.apply_lora:
        model = add_lora(model, settings.lora_r, settings.lora_alpha, settings.lora_dropout, task_type="CAUSAL_LM")

    trajectory = fingerprint(
        run, inputs, train_sha256=train_texts.sha256,
        validation_sha256=validation_texts.sha256 if validation_texts else None,
    )  # fmt: skip
    progress, best = train_model(
        run, model, tokenizer, train_data, held_out, trajectory, inputs.resume, LANGUAGE_MODELLING
    )
    metrics = common_metrics(run, progress, GENERATION_TASK)
    chosen = next((h for h in progress.history if h["step"] == progress.best_step), {})
    metrics["best"].update({k: chosen.get(k) for k in ("eval_loss", "perplexity")})
    metrics.update(
        perplexity={"before": before}, train_texts=len(train_texts), train_sequences=len(train_data),
        validation_sequences=len(held_out), sequence_length=sequence_length,
    )  # fmt: skip

    def export_merged(merged_model) -> Path:
        metrics["perplexity"]["after"] = held_out_perplexity(merged_model, held_out)
        run.say(f"held-out perplexity after: {metrics['perplexity']['after']['perplexity']:.2f}")

        def add_files(folder: Path) -> None:
            write_reports(folder, metrics, progress.history, ("perplexity",))
            write_engine_files(folder)

        return _export(merged_model, spec, run.base, inputs.output, _card(spec, run, metrics), add_files)

    return FinetuneResult(finish(run, inputs, model, best, export_merged), [], metrics)


def _sequence_length(max_length: int | None, context: int) -> int:
    """max_length: the model's context unless given; never beyond it."""
    if max_length is None:
        return context
    if max_length > context:
        raise AssetError(f"--max-length {max_length} is beyond the model's context of {context} tokens")
    return max_length


def _card(spec: AssetSpec, run, metrics: dict[str, Any]) -> str:
    before, after = (metrics["perplexity"][when]["perplexity"] for when in ("before", "after"))
    lora = " with LoRA (merged into the weights)" if run.settings.apply_lora else ""
    return (
        f"# {spec.name} finetuned on your own text\n\n"
        f"{spec.name} ({run.base.source} @ {run.base.revision[:12]}) finetuned for text generation by "
        f"`distilgpt2-asset finetune --task text-generation`{lora}, on {metrics['train_sequences']} sequences "
        f"of {metrics['sequence_length']} tokens.\n\n"
        f"Held-out perplexity: {before:.2f} before, {after:.2f} after "
        f"({metrics['perplexity']['after']['tokens_scored']} tokens).\n\n"
        f"Served as {spec.name} is: the same requests, parameters and answers.\n"
    )


def _export(model, spec: AssetSpec, base: BaseModel, output: Path, description: str, add_files) -> Path:
    """The merged model as the base build saves distilgpt2: a text-generation pipeline with the published
    signature, the base build's metadata (+ what it was finetuned from), pinned requirements, manifest."""
    from transformers import AutoTokenizer, pipeline

    # The tokenizer as the base ships it (training set a pad token on its own copy).
    tokenizer = AutoTokenizer.from_pretrained(base.tokenizer, trust_remote_code=False)
    pipe = pipeline(GENERATION_TASK, model=model, tokenizer=tokenizer)
    metadata = {
        **_metadata(spec, base.source, base.revision),
        **base.metadata(),
        "is_finetuned_model": True,
        "finetuning_task": GENERATION_TASK,
    }
    return save_mlflow_model(
        pipe,
        output,
        task=spec.task,
        signature=_signature(),
        metadata=metadata,
        model_card=model_card(spec, description),
        source=base.source,
        add_files=add_files,
    )

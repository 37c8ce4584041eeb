"""The training loop: seeded batches, AdamW with linear warm-up and decay, evaluation on
accuracy / f1_macro, early stopping on f1_macro, a checkpoint after every evaluation.

A plain PyTorch loop rather than transformers' Trainer: its checkpoints are safetensors
only (Trainer pickles optimizer and RNG state), a resumed run repeats the uninterrupted one
exactly (batch order is a function of seed and epoch, RNG state is restored), and it starts
in a fraction of a second, which keeps the tests fast. DDP covers torchrun's processes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from . import finetune_checkpoints as checkpoints
from .finetune_runtime import Runtime

GRADIENT_CLIP = 1.0


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    eval_steps: int | None  # None: evaluate at the end of each epoch
    early_stopping_patience: int
    seed: int


@dataclass
class Progress:
    """What state.json keeps: how far the run got and what it has seen."""

    step: int = 0
    best_f1_macro: float = -1.0
    best_step: int = 0
    evaluations_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Encoded:
    """Tokenized examples: ids per text (truncated), label index per text."""

    input_ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


def collate(data: Encoded, indices: list[int], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    longest = max(len(data.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), longest), dtype=torch.long)
    for row, i in enumerate(indices):
        seq = data.input_ids[i]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    labels = torch.tensor([data.labels[i] for i in indices])
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def epoch_batches(n: int, settings: LoopSettings, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches for an epoch: a permutation seeded by (seed, epoch), sharded like DistributedSampler."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(settings.seed + epoch)).tolist()
    per_rank = math.ceil(n / world)
    order += order[: per_rank * world - n]  # pad so every rank takes the same number of steps
    mine = order[rank::world]
    return [mine[i : i + settings.batch_size] for i in range(0, len(mine), settings.batch_size)]


def steps_per_epoch(n: int, settings: LoopSettings, world: int) -> int:
    return math.ceil(math.ceil(n / world) / settings.batch_size)


def evaluate(model, data: Encoded, pad_id: int, batch_size: int, device: torch.device, show: bool) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    model.eval()
    predictions, losses = [], []
    with torch.no_grad():
        for start in tqdm(range(0, len(data), batch_size), desc="evaluating", unit="batch", leave=False, disable=not show):
            batch = collate(data, list(range(start, min(start + batch_size, len(data)))), pad_id, device)
            out = model(**batch)
            losses.append(out.loss.item() * len(batch["labels"]))
            predictions += out.logits.argmax(-1).tolist()
    num_labels = model.config.num_labels
    return {
        "eval_loss": sum(losses) / len(data),
        "accuracy": float(accuracy_score(data.labels, predictions)),
        "f1_macro": float(f1_score(data.labels, predictions, average="macro", labels=list(range(num_labels)), zero_division=0)),
    }


def _learning_rate(step: int, total: int, settings: LoopSettings) -> float:
    warmup = int(total * settings.warmup_ratio)
    if step < warmup:
        return settings.learning_rate * (step + 1) / warmup
    return settings.learning_rate * max(0.0, (total - step) / max(1, total - warmup))


def train(
    model,
    train_data: Encoded,
    validation: Encoded,
    settings: LoopSettings,
    runtime: Runtime,
    pad_id: int,
    checkpoint_dir: Path,
    fingerprint: dict[str, Any],
    resume: bool,
) -> tuple[Progress, dict[str, torch.Tensor]]:
    """Train model in place; return the progress and the best trainable weights (by f1_macro)."""
    model.to(runtime.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    progress, best = Progress(), checkpoints.trainable_weights(model)
    if resume:
        saved = checkpoints.read_state(checkpoint_dir)
        checkpoints.check_fingerprint(checkpoint_dir, saved["fingerprint"], fingerprint)
        best = checkpoints.restore(checkpoint_dir, model, optimizer)
        progress = Progress(**saved["progress"])
    forward = model
    if runtime.distributed:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [runtime.local_rank] if runtime.device.type == "cuda" else None
        forward = DistributedDataParallel(model, device_ids=device_ids)
    per_epoch = steps_per_epoch(len(train_data), settings, runtime.world_size)
    total = per_epoch * settings.epochs
    eval_every = settings.eval_steps or per_epoch
    if resume and runtime.is_main:
        print(
            f"resuming at step {progress.step}/{total} (epoch {progress.step // per_epoch + 1}); "
            f"best f1_macro so far {progress.best_f1_macro:.4f}",
            flush=True,
        )
    bar = tqdm(total=total, initial=progress.step, desc="finetuning", unit="step", disable=not runtime.is_main)
    batches, batches_epoch, running = [], -1, []
    while progress.step < total and not progress.stopped_early:
        epoch, index = divmod(progress.step, per_epoch)
        if epoch != batches_epoch:
            batches, batches_epoch = epoch_batches(len(train_data), settings, epoch, runtime.rank, runtime.world_size), epoch
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(progress.step, total, settings)
        model.train()
        loss = forward(**collate(train_data, batches[index], pad_id, runtime.device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRADIENT_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        running.append(loss.item())
        progress.step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if progress.step % eval_every == 0 or progress.step == total:
            metrics = evaluate(model, validation, pad_id, settings.batch_size, runtime.device, runtime.is_main)
            record = {"step": progress.step, "epoch": progress.step / per_epoch, "loss": sum(running) / len(running), **metrics}
            running = []
            progress.history.append(record)
            if metrics["f1_macro"] > progress.best_f1_macro:
                progress.best_f1_macro, progress.best_step = metrics["f1_macro"], progress.step
                progress.evaluations_without_improvement = 0
                best = checkpoints.trainable_weights(model)
            else:
                progress.evaluations_without_improvement += 1
                progress.stopped_early = progress.evaluations_without_improvement >= settings.early_stopping_patience
            if runtime.is_main:
                bar.write(
                    f"step {progress.step}: loss {record['loss']:.4f}, eval_loss {metrics['eval_loss']:.4f}, "
                    f"accuracy {metrics['accuracy']:.4f}, f1_macro {metrics['f1_macro']:.4f}"
                )
                state = {"fingerprint": fingerprint, "progress": asdict(progress)}
                checkpoints.save_checkpoint(checkpoint_dir, model, optimizer, best, state)
            runtime.barrier()
    bar.close()
    if progress.stopped_early and runtime.is_main:
        print(
            f"early stopping at step {progress.step}: f1_macro has not improved for "
            f"{settings.early_stopping_patience} evaluations (best {progress.best_f1_macro:.4f} at step {progress.best_step})",
            flush=True,
        )
    return progress, best

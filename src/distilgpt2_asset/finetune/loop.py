"""The training loop: seeded batches padded by the tokenizer, AdamW with linear warm-up and decay,
evaluation by the task's Objective (text classification: accuracy / f1_macro; text generation:
validation loss and perplexity), early stopping on its metric, a checkpoint after every evaluation.

accelerate places the model and the batches on the device, and under torchrun wraps the model in
DDP (gradients averaged across processes) and gives each process its share of the batches. The
loop itself is ours rather than transformers' Trainer: its checkpoints are safetensors only (Trainer
and accelerate's save_state pickle optimizer and RNG state), a resumed run repeats the uninterrupted
one exactly (batch order is a function of seed and epoch, RNG state is restored), and it starts in
a fraction of a second, which keeps the tests fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from . import checkpoints

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
    best_score: float | None = None  # the objective's metric at best_step
    best_step: int = 0
    evaluations_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Objective:
    """What a task's training is judged by: its validation figures, and the one that picks the best weights."""

    evaluate: Callable[
        ..., dict[str, float]
    ]  # (model, validation loader, accelerator) -> figures, same in every process
    metric: str
    higher_is_better: bool

    def improves(self, score: float, best: float | None) -> bool:
        return best is None or (score > best if self.higher_is_better else score < best)


@dataclass(frozen=True)
class Encoded(Dataset[dict[str, Any]]):
    """Tokenized examples: ids per text (truncated), label index per text; a dataset of the
    features DataCollatorWithPadding pads into batches."""

    input_ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


@dataclass(frozen=True)
class Packed(Dataset[dict[str, Any]]):
    """Token sequences of one length cut from the texts laid end to end (causal LM): each is its own label."""

    blocks: list[list[int]]

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.blocks[index], "labels": self.blocks[index]}


def data_loader(data: Encoded | Packed, tokenizer, batch_size: int, shuffle: bool, seed: int):
    """Batches padded by the tokenizer (to the longest text of each batch, on the tokenizer's side)."""
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    # Its own generator: each pass draws a seed from the loader's generator; a draw from the global
    # RNG instead would shift dropout's masks away from those of the run a resume repeats.
    generator = torch.Generator().manual_seed(seed)
    collator = DataCollatorWithPadding(tokenizer)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, collate_fn=collator, generator=generator)


def evaluate_classifier(model, loader, accelerator) -> dict[str, float]:
    """Loss, accuracy and f1_macro over the whole validation set; every process gets the same figures."""
    from sklearn.metrics import accuracy_score, f1_score

    model.eval()
    logit_batches: list[torch.Tensor] = []
    label_batches: list[torch.Tensor] = []
    with torch.no_grad():
        for batch in tqdm(
            loader, desc="evaluating", unit="batch", leave=False, disable=not accelerator.is_main_process
        ):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            gathered_logits, gathered_labels = accelerator.gather_for_metrics((out.logits, batch["labels"]))
            logit_batches.append(gathered_logits.float().cpu())
            label_batches.append(gathered_labels.cpu())
    logits, labels = torch.cat(logit_batches), torch.cat(label_batches)
    predictions = logits.argmax(-1)
    return {
        "eval_loss": torch.nn.functional.cross_entropy(logits, labels).item(),
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1_macro": float(
            f1_score(labels, predictions, average="macro", labels=list(range(logits.shape[-1])), zero_division=0)
        ),
    }


def evaluate_language_model(model, loader, accelerator) -> dict[str, float]:
    """Mean next-token loss over every validation token, and its perplexity; the same in every process."""
    import torch.nn.functional as F

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in tqdm(
            loader, desc="evaluating", unit="batch", leave=False, disable=not accelerator.is_main_process
        ):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            # Position i predicts token i + 1: each sequence's summed loss, gathered from every process.
            losses = F.cross_entropy(
                logits[:, :-1].transpose(1, 2).float(), batch["labels"][:, 1:], reduction="none"
            ).sum(-1)
            tokens = torch.full_like(losses, batch["labels"].shape[1] - 1)
            gathered_losses, gathered_tokens = accelerator.gather_for_metrics((losses, tokens))
            total += gathered_losses.double().sum().item()
            count += int(gathered_tokens.sum().item())
    loss = total / count
    return {"eval_loss": loss, "perplexity": math.exp(loss)}


CLASSIFICATION = Objective(evaluate_classifier, "f1_macro", higher_is_better=True)
LANGUAGE_MODELLING = Objective(evaluate_language_model, "eval_loss", higher_is_better=False)


def _learning_rate(step: int, total: int, settings: LoopSettings) -> float:
    warmup = int(total * settings.warmup_ratio)
    if step < warmup:
        return settings.learning_rate * (step + 1) / warmup
    return settings.learning_rate * max(0.0, (total - step) / max(1, total - warmup))


def train(
    model,
    tokenizer,
    train_data: Encoded | Packed,
    validation: Encoded | Packed,
    settings: LoopSettings,
    accelerator,
    checkpoint_dir: Path,
    fingerprint: dict[str, Any],
    resume: bool,
    objective: Objective = CLASSIFICATION,
) -> tuple[Progress, dict[str, torch.Tensor]]:
    """Train model in place; return the progress and the best trainable weights (by the objective's metric)."""
    params = [p for p in model.parameters() if p.requires_grad]
    forward, optimizer, train_loader, validation_loader = accelerator.prepare(
        model,
        torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay),
        data_loader(train_data, tokenizer, settings.batch_size, shuffle=True, seed=settings.seed),
        data_loader(validation, tokenizer, settings.batch_size, shuffle=False, seed=settings.seed),
    )
    progress, best = Progress(), checkpoints.trainable_weights(model)
    if resume:
        saved = checkpoints.read_state(checkpoint_dir)
        checkpoints.check_fingerprint(checkpoint_dir, saved["fingerprint"], fingerprint)
        best = checkpoints.restore(checkpoint_dir, model, optimizer, accelerator.process_index)
        progress = Progress(**saved["progress"])
    per_epoch = len(train_loader)
    total = per_epoch * settings.epochs
    eval_every = settings.eval_steps or per_epoch
    if resume and accelerator.is_main_process:
        print(
            f"resuming at step {progress.step}/{total} (epoch {progress.step // per_epoch + 1}); "
            f"best {objective.metric} so far {_figure(progress.best_score)}",
            flush=True,
        )
    bar = tqdm(
        total=total, initial=progress.step, desc="finetuning", unit="step", disable=not accelerator.is_main_process
    )
    running = []
    while progress.step < total and not progress.stopped_early:
        epoch, done_in_epoch = divmod(progress.step, per_epoch)
        train_loader.set_epoch(epoch)
        for batch in accelerator.skip_first_batches(train_loader, done_in_epoch) if done_in_epoch else train_loader:
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(progress.step, total, settings)
            forward.train()
            loss = forward(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(params, GRADIENT_CLIP)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            running.append(loss.item())
            progress.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if progress.step % eval_every == 0 or progress.step == total:
                metrics = objective.evaluate(model, validation_loader, accelerator)
                record = {
                    "step": progress.step,
                    "epoch": progress.step / per_epoch,
                    "loss": _mean(running, accelerator),
                    **metrics,
                }
                running = []
                best = _record(progress, record, model, best, settings.early_stopping_patience, objective)
                rng = _rng_states(accelerator)  # every process takes part
                if accelerator.is_main_process:
                    figures = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
                    bar.write(f"step {progress.step}: loss {record['loss']:.4f}, {figures}")
                    state = {"fingerprint": fingerprint, "progress": asdict(progress)}
                    checkpoints.save_checkpoint(checkpoint_dir, model, optimizer, best, state, rng)
                accelerator.wait_for_everyone()
            if progress.stopped_early:
                break
    bar.close()
    if progress.stopped_early and accelerator.is_main_process:
        print(
            f"early stopping at step {progress.step}: {objective.metric} has not improved for "
            f"{settings.early_stopping_patience} evaluations "
            f"(best {_figure(progress.best_score)} at step {progress.best_step})",
            flush=True,
        )
    return progress, best


def _rng_states(accelerator) -> dict[str, torch.Tensor]:
    """generator -> its state in each process, one row per process (the checkpoint keeps them all)."""
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return {name: accelerator.gather(state.to(accelerator.device)[None]).cpu() for name, state in states.items()}


def _mean(losses: list[float], accelerator) -> float:
    """The mean training loss since the last evaluation, over every process (as the validation figures are)."""
    local = torch.tensor(sum(losses) / len(losses), dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(local, "mean").item()


def _figure(score: float | None) -> str:
    return "none yet" if score is None else f"{score:.4f}"


def _record(
    progress: Progress,
    record: dict[str, float],
    model,
    best: dict[str, torch.Tensor],
    patience: int,
    objective: Objective,
) -> dict[str, torch.Tensor]:
    """Add an evaluation to progress; return the best trainable weights after it (early stopping on the metric)."""
    progress.history.append(record)
    if objective.improves(record[objective.metric], progress.best_score):
        progress.best_score, progress.best_step = record[objective.metric], progress.step
        progress.evaluations_without_improvement = 0
        return checkpoints.trainable_weights(model)
    progress.evaluations_without_improvement += 1
    progress.stopped_early = progress.evaluations_without_improvement >= patience
    return best

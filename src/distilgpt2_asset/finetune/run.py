"""Finetune distilgpt2 -> a servable MLflow model: text classification (the card's finetuning task,
here) or text generation on the user's own text (generation.py); both share what is here.

    dataset (JSONL/CSV) ─► validated examples ─► labels ─► GPT2ForSequenceClassification (+ LoRA)
        ─► training loop (loop.py) ─► best weights, merged ─► MLflow model + metrics.json + plot

Defaults for apply_lora / apply_deepspeed / apply_ort come from spec.yaml's
model_specific_defaults; what happened to each requested flag is printed and kept in
metrics.json. Runs as one process or under torchrun (Azure ML `distribution: pytorch`), on
accelerate (runtime.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import AssetError
from ..spec import AssetSpec
from . import checkpoints, data
from .loop import CLASSIFICATION, Encoded, LoopSettings, Objective, Progress, train
from .model import BaseModel, add_lora, export, load_classifier, load_tokenizer, locate_base, merged
from .release import GENERATION_TASK, TASK, TASKS
from .runtime import accelerator_notes, start_accelerator

CLASSIFICATION_MAX_LENGTH = 256
METRICS_FILE = "metrics.json"
CURVE_FILE = "training-curve.png"
LEARNING_RATE = {True: 5e-4, False: 5e-5}  # LoRA trains far fewer weights and takes a larger step


def _setting(default, help: str):
    """A settings field; `distilgpt2-asset finetune` makes it an option with this default and help."""
    return field(default=default, metadata={"help": help})


SPEC_DEFAULT = "default: spec.yaml's model_specific_defaults"


@dataclass(frozen=True)
class FinetuneSettings:
    """Hyper-parameters; None for apply_* means spec.yaml's model_specific_defaults."""

    epochs: int = _setting(3, "passes over the training data")
    batch_size: int = _setting(16, "examples per step, per process")
    learning_rate: float | None = _setting(
        None,
        f"AdamW's peak learning rate (default: {LEARNING_RATE[True]:g} with LoRA, {LEARNING_RATE[False]:g} without)",
    )
    weight_decay: float = _setting(0.0, "AdamW's weight decay")
    warmup_ratio: float = _setting(0.0, "share of steps with rising learning rate")
    max_length: int | None = _setting(
        None,
        f"tokens per sequence (default: {CLASSIFICATION_MAX_LENGTH} for text classification, longer texts "
        "truncated; the model's context for text generation, texts packed end to end into sequences this long)",
    )
    eval_steps: int | None = _setting(None, "evaluate and checkpoint every N steps (default: every epoch)")
    early_stopping_patience: int = _setting(
        3, "evaluations without a better f1_macro (text generation: validation loss) before stopping"
    )
    seed: int = _setting(42, "seeds the new weights, dropout, the batch order and the validation split")
    validation_fraction: float = _setting(0.1, "share of --train held out when there is no --validation")
    apply_lora: bool | None = _setting(
        None, f"train LoRA adapters (merged at export) instead of every weight ({SPEC_DEFAULT})"
    )
    lora_r: int = _setting(8, "rank of the LoRA adapters")
    lora_alpha: int = _setting(16, "LoRA scaling numerator (the adapters are scaled by alpha / r)")
    lora_dropout: float = _setting(0.1, "dropout on the LoRA adapters' input")
    apply_deepspeed: bool | None = _setting(None, f"request DeepSpeed, reported when it cannot apply ({SPEC_DEFAULT})")
    apply_ort: bool | None = _setting(
        None, f"request ONNX Runtime training, reported when it cannot apply ({SPEC_DEFAULT})"
    )

    def resolved(self, spec: AssetSpec, task: str = TASK) -> FinetuneSettings:
        """apply_* and learning_rate filled in; max_length too for text classification (text generation
        fills it in from the model's context)."""
        defaults = spec.model_specific_defaults
        flags: dict[str, bool] = {
            name: defaults.get(name, False) if getattr(self, name) is None else getattr(self, name)
            for name in ("apply_lora", "apply_deepspeed", "apply_ort")
        }
        settings = replace(self, **flags)
        if settings.learning_rate is None:
            settings = replace(settings, learning_rate=LEARNING_RATE[flags["apply_lora"]])
        if settings.max_length is None and task == TASK:
            settings = replace(settings, max_length=CLASSIFICATION_MAX_LENGTH)
        settings.check()
        return settings

    def check(self) -> None:
        positive = ("epochs", "batch_size", "early_stopping_patience", "lora_r", "lora_alpha")
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}" for name in positive if getattr(self, name) < 1
        ]
        for name in ("eval_steps", "max_length"):  # None: the default
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate is not None and not self.learning_rate > 0:  # None: the default
            problems.append(f"learning_rate must be above 0, got {self.learning_rate}")
        for name in ("warmup_ratio", "lora_dropout"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                problems.append(f"{name} must be in [0, 1), got {value}")
        if problems:
            raise AssetError("; ".join(problems))


@dataclass(frozen=True)
class FinetuneInputs:
    train: Path
    output: Path
    validation: Path | None = None
    task: str = TASK
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # None: the training labels, sorted (text classification only)
    source: str | None = None  # None: spec.yaml's hub id at the pinned SHA
    revision: str | None = None
    checkpoint_dir: Path | None = None  # None: OUTPUT.checkpoints beside the output
    resume: bool = False
    keep_checkpoints: bool = False


@dataclass(frozen=True)
class FinetuneResult:
    output: Path | None  # None on ranks other than 0
    labels: list[str]  # [] for text generation
    metrics: dict[str, Any]


def default_checkpoint_dir(output: Path) -> Path:
    output = Path(output).resolve()
    return output.with_name(output.name + ".checkpoints")


def _datasets(inputs: FinetuneInputs, settings: FinetuneSettings) -> tuple[data.Examples, data.Examples, list[str]]:
    train_set = data.load_examples(inputs.train, inputs.text_column, inputs.label_column)
    labels = data.label_names(train_set, list(inputs.labels) if inputs.labels else None)
    data.check_labels(train_set, labels)
    if inputs.validation is not None:
        validation = data.load_examples(inputs.validation, inputs.text_column, inputs.label_column)
        data.check_labels(validation, labels)
    else:
        train_set, validation = data.split(train_set, settings.validation_fraction, settings.seed)
    data.check_every_label_trained(train_set, labels)
    return train_set, validation, labels


def _encode(tokenizer, examples: data.Examples, labels: list[str], max_length: int) -> tuple[Encoded, int]:
    """(encoded examples, how many were truncated)."""
    index = {name: i for i, name in enumerate(labels)}
    ids = tokenizer(list(examples.texts), truncation=False, add_special_tokens=False)["input_ids"]
    truncated = sum(len(seq) > max_length for seq in ids)
    return Encoded([seq[:max_length] for seq in ids], [index[name] for name in examples.labels]), truncated


def fingerprint(run: Run, inputs: FinetuneInputs, **data: Any) -> dict[str, Any]:
    """Everything that shapes the training trajectory (settings, base, data: its hashes and columns);
    a resume must match it exactly."""
    trajectory = {k: v for k, v in asdict(run.settings).items() if k not in ("apply_deepspeed", "apply_ort")}
    return {
        **trajectory,
        "source": run.base.source,
        "revision": run.base.revision,
        "text_column": inputs.text_column,
        "world_size": run.accelerator.num_processes,
        **data,
    }


def _plan_checkpoints(inputs: FinetuneInputs) -> Path:
    """The checkpoint folder (made by the first checkpoint, so a refused run leaves nothing behind)."""
    folder = Path(inputs.checkpoint_dir or default_checkpoint_dir(inputs.output)).resolve()
    exists = checkpoints.has_checkpoint(folder)
    if inputs.resume and not exists:
        raise AssetError(f"--resume: no checkpoint in {folder} (pass the run's --checkpoint-dir)")
    if not inputs.resume and exists:
        raise AssetError(
            f"{folder} holds a checkpoint of an earlier run; pass --resume to continue it, "
            "or delete it / choose another --checkpoint-dir to start afresh"
        )
    return folder


def write_reports(
    folder: Path, metrics: dict[str, Any], history: list[dict[str, float]], scores: tuple[str, ...]
) -> None:
    """metrics.json, and the training curve: losses, and the validation figures named in scores."""
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if history:
        _plot(history, folder / CURVE_FILE, scores)


def _plot(history: list[dict[str, float]], path: Path, names: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, (losses, scores) = plt.subplots(1, 2, figsize=(10, 4))
    losses.plot(steps, [h["loss"] for h in history], marker="o", label="training loss")
    losses.plot(steps, [h["eval_loss"] for h in history], marker="o", label="validation loss")
    for name in names:
        scores.plot(steps, [h[name] for h in history], marker="o", label=name)
    for axes, title in ((losses, "loss"), (scores, "validation metrics")):
        axes.set_xlabel("step")
        axes.set_title(title)
        axes.legend()
        axes.grid(alpha=0.3)
    if all(0 <= h[name] <= 1 for h in history for name in names):  # shares (accuracy, f1): the whole scale
        scores.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same curve, same bytes
    plt.close(fig)


@dataclass(frozen=True)
class Run:
    """One finetune's settings (resolved), processes, base model and checkpoint folder, whatever the task."""

    settings: FinetuneSettings
    accelerator: Any
    base: BaseModel
    checkpoint_dir: Path
    notes: dict[str, str]  # what became of each requested accelerator flag

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def say(self, message: str) -> None:
        """Print once (on the main process)."""
        if self.is_main:
            print(message, flush=True)


def start_run(spec: AssetSpec, inputs: FinetuneInputs, settings: FinetuneSettings, task: str) -> Run:
    """Settings resolved, accelerate started, the base located (verified) and the checkpoint folder planned."""
    settings = settings.resolved(spec, task)
    accelerator = start_accelerator(settings.seed)
    base = locate_base(spec, inputs.source, inputs.revision)
    checkpoint_dir = _plan_checkpoints(inputs)
    notes = accelerator_notes(
        {"apply_deepspeed": settings.apply_deepspeed, "apply_ort": settings.apply_ort}, accelerator.device
    )
    run = Run(settings, accelerator, base, checkpoint_dir, notes)
    for note in notes.values():
        run.say(f"note: {note}")
    return run


def train_model(
    run: Run, model, tokenizer, train_data, validation, fingerprint: dict[str, Any], resume: bool, objective: Objective
) -> tuple[Progress, dict]:
    """Say what trains where, then run the loop (loop.py); the progress and the best trainable weights."""
    settings, accelerator = run.settings, run.accelerator
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    how = f"LoRA r={settings.lora_r}" if settings.apply_lora else "all"
    processes = f" x {accelerator.num_processes} processes" if accelerator.num_processes > 1 else ""
    run.say(f"training {trainable:,} of {total:,} weights ({how}) on {accelerator.device}{processes}")
    loop = LoopSettings(**{f.name: getattr(settings, f.name) for f in fields(LoopSettings)})
    return train(
        model, tokenizer, train_data, validation, loop, accelerator, run.checkpoint_dir, fingerprint, resume, objective
    )


def finish(run: Run, inputs: FinetuneInputs, model, best: dict, export_merged: Callable[[Any], Path]) -> Path | None:
    """On the main process: the best weights, merged, exported by export_merged(model) -> the folder;
    the checkpoints removed unless kept. Every process waits for it; None on the others."""
    output = None
    if run.is_main:
        checkpoints.load_trainable(model, best)
        output = export_merged(merged(model.cpu()))
        if not inputs.keep_checkpoints:
            shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    run.accelerator.wait_for_everyone()
    return output


def common_metrics(run: Run, progress: Progress, task: str) -> dict[str, Any]:
    """The figures every task's metrics.json carries."""
    return {
        "task": task,
        "best": {"step": progress.best_step},
        "steps": progress.step,
        "stopped_early": progress.stopped_early,
        "history": progress.history,
        "settings": asdict(run.settings),
        "accelerators": run.notes,
    }


def finetune(
    spec: AssetSpec, inputs: FinetuneInputs, settings: FinetuneSettings = FinetuneSettings()
) -> FinetuneResult:
    """Finetune for inputs.task; every problem with the data is reported before training starts."""
    if inputs.task == GENERATION_TASK:
        from .generation import finetune_language_model

        return finetune_language_model(spec, inputs, settings)
    if inputs.task != TASK:
        raise AssetError(f"unknown finetuning task {inputs.task!r}; tasks: {', '.join(TASKS)}")
    return _finetune_classifier(spec, inputs, settings)


def _finetune_classifier(spec: AssetSpec, inputs: FinetuneInputs, settings: FinetuneSettings) -> FinetuneResult:
    from accelerate.utils import set_seed

    train_set, validation, labels = _datasets(inputs, settings)
    run = start_run(spec, inputs, settings, TASK)
    settings = run.settings
    run.say(f"{len(train_set)} training / {len(validation)} validation examples; labels: {', '.join(labels)}")

    set_seed(settings.seed)
    tokenizer = load_tokenizer(run.base)
    model = load_classifier(run.base, labels, tokenizer.pad_token_id)
    if settings.apply_lora:
        model = add_lora(model, settings.lora_r, settings.lora_alpha, settings.lora_dropout)
    max_length = settings.max_length
    assert max_length is not None  # resolved() sets it for text classification
    encoded_train, truncated = _encode(tokenizer, train_set, labels, max_length)
    encoded_validation, truncated_validation = _encode(tokenizer, validation, labels, max_length)
    truncated += truncated_validation
    if truncated:
        run.say(f"note: {truncated} texts are longer than max_length {settings.max_length} tokens and were truncated")

    trajectory = fingerprint(
        run, inputs, train_sha256=train_set.sha256, validation_sha256=validation.sha256,
        label_column=inputs.label_column, labels=labels,
    )  # fmt: skip
    progress, best = train_model(
        run, model, tokenizer, encoded_train, encoded_validation, trajectory, inputs.resume, CLASSIFICATION
    )
    chosen = next((h for h in progress.history if h["step"] == progress.best_step), {})
    figures = {k: chosen.get(k) for k in ("accuracy", "f1_macro", "eval_loss")}
    metrics = common_metrics(run, progress, TASK)
    metrics["best"].update(figures)
    metrics.update(
        labels=labels, accuracy=figures["accuracy"], f1_macro=figures["f1_macro"], train_examples=len(train_set),
        validation_examples=len(validation), truncated_examples=truncated,
    )  # fmt: skip
    summary = {"lora": settings.apply_lora, "evaluations": len(progress.history), "best_step": progress.best_step,
               "accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]}  # fmt: skip

    def reports(folder: Path) -> None:
        write_reports(folder, metrics, progress.history, ("accuracy", "f1_macro"))

    def export_merged(model) -> Path:
        return export(model, tokenizer, spec, run.base, inputs.output, summary, reports)

    return FinetuneResult(finish(run, inputs, model, best, export_merged), labels, metrics)

"""Finetune distilgpt2 for text classification (the card's finetuning task) -> a servable MLflow model.

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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import AssetError
from ..spec import AssetSpec
from . import checkpoints, data
from .loop import Encoded, LoopSettings, Progress, train
from .model import TASK, BaseModel, add_lora, export, load_classifier, load_tokenizer, locate_base, merged
from .runtime import accelerator_notes, start_accelerator

REGISTERED_SUFFIX = "-text-classification"  # distilgpt2 -> distilgpt2-text-classification
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
    max_length: int = _setting(256, "tokens per text; longer texts are truncated")
    eval_steps: int | None = _setting(None, "evaluate and checkpoint every N steps (default: every epoch)")
    early_stopping_patience: int = _setting(3, "evaluations without a better f1_macro before stopping")
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

    def resolved(self, spec: AssetSpec) -> FinetuneSettings:
        defaults = spec.model_specific_defaults
        flags = {
            name: defaults.get(name, False) if getattr(self, name) is None else getattr(self, name)
            for name in ("apply_lora", "apply_deepspeed", "apply_ort")
        }
        settings = replace(self, **flags)
        if settings.learning_rate is None:
            settings = replace(settings, learning_rate=LEARNING_RATE[settings.apply_lora])
        settings.check()
        return settings

    def check(self) -> None:
        positive = ("epochs", "batch_size", "max_length", "early_stopping_patience", "lora_r", "lora_alpha")
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}" for name in positive if getattr(self, name) < 1
        ]
        if self.eval_steps is not None and self.eval_steps < 1:
            problems.append(f"eval_steps must be at least 1, got {self.eval_steps}")
        if not self.learning_rate > 0:
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
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # None: the training labels, sorted
    source: str | None = None  # None: spec.yaml's hub id at the pinned SHA
    revision: str | None = None
    checkpoint_dir: Path | None = None  # None: OUTPUT.checkpoints beside the output
    resume: bool = False
    keep_checkpoints: bool = False


@dataclass(frozen=True)
class FinetuneResult:
    output: Path | None  # None on ranks other than 0
    labels: list[str]
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


def _fingerprint(inputs, settings, base: BaseModel, train_set, validation, labels, world_size) -> dict[str, Any]:
    """Everything that shapes the training trajectory; a resume must match it exactly."""
    trajectory = {k: v for k, v in asdict(settings).items() if k not in ("apply_deepspeed", "apply_ort")}
    return {
        **trajectory,
        "source": base.source,
        "revision": base.revision,
        "train_sha256": train_set.sha256,
        "validation_sha256": validation.sha256,
        "text_column": inputs.text_column,
        "label_column": inputs.label_column,
        "labels": labels,
        "world_size": world_size,
    }


def _plan_checkpoints(inputs: FinetuneInputs, is_main: bool) -> Path:
    folder = Path(inputs.checkpoint_dir or default_checkpoint_dir(inputs.output)).resolve()
    exists = checkpoints.has_checkpoint(folder)
    if inputs.resume and not exists:
        raise AssetError(f"--resume: no checkpoint in {folder} (pass the run's --checkpoint-dir)")
    if not inputs.resume and exists:
        raise AssetError(
            f"{folder} holds a checkpoint of an earlier run; pass --resume to continue it, "
            "or delete it / choose another --checkpoint-dir to start afresh"
        )
    if is_main:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write_reports(folder: Path, metrics: dict[str, Any], history: list[dict[str, float]]) -> None:
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if history:
        _plot(history, folder / CURVE_FILE)


def _plot(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, (losses, scores) = plt.subplots(1, 2, figsize=(10, 4))
    losses.plot(steps, [h["loss"] for h in history], marker="o", label="training loss")
    losses.plot(steps, [h["eval_loss"] for h in history], marker="o", label="validation loss")
    scores.plot(steps, [h["accuracy"] for h in history], marker="o", label="accuracy")
    scores.plot(steps, [h["f1_macro"] for h in history], marker="o", label="f1_macro")
    for axes, title in ((losses, "loss"), (scores, "validation metrics")):
        axes.set_xlabel("step")
        axes.set_title(title)
        axes.legend()
        axes.grid(alpha=0.3)
    scores.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: same curve, same bytes
    plt.close(fig)


def _metrics(progress: Progress, settings, labels, train_set, validation, notes, truncated) -> dict[str, Any]:
    best = next((h for h in progress.history if h["step"] == progress.best_step), {})
    return {
        "task": TASK,
        "labels": labels,
        "best": {"step": progress.best_step, **{k: best.get(k) for k in ("accuracy", "f1_macro", "eval_loss")}},
        "accuracy": best.get("accuracy"),
        "f1_macro": best.get("f1_macro"),
        "steps": progress.step,
        "stopped_early": progress.stopped_early,
        "history": progress.history,
        "train_examples": len(train_set),
        "validation_examples": len(validation),
        "truncated_examples": truncated,
        "settings": asdict(settings),
        "accelerators": notes,
    }


def finetune(
    spec: AssetSpec, inputs: FinetuneInputs, settings: FinetuneSettings = FinetuneSettings()
) -> FinetuneResult:
    from accelerate.utils import set_seed

    settings = settings.resolved(spec)
    accelerator = start_accelerator(settings.seed)
    is_main = accelerator.is_main_process
    say = print if is_main else (lambda *a, **k: None)
    train_set, validation, labels = _datasets(inputs, settings)
    base = locate_base(spec, inputs.source, inputs.revision)
    checkpoint_dir = _plan_checkpoints(inputs, is_main)
    notes = accelerator_notes(
        {"apply_deepspeed": settings.apply_deepspeed, "apply_ort": settings.apply_ort}, accelerator.device
    )
    for note in notes.values():
        say(f"note: {note}", flush=True)
    say(f"{len(train_set)} training / {len(validation)} validation examples; labels: {', '.join(labels)}", flush=True)

    set_seed(settings.seed)
    tokenizer = load_tokenizer(base)
    model = load_classifier(base, labels, tokenizer.pad_token_id)
    if settings.apply_lora:
        model = add_lora(model, settings.lora_r, settings.lora_alpha, settings.lora_dropout)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    say(f"training {trainable:,} of {total:,} weights ({'LoRA r=%d' % settings.lora_r if settings.apply_lora else 'all'}) on {accelerator.device}"
        + (f" x {accelerator.num_processes} processes" if accelerator.num_processes > 1 else ""), flush=True)  # fmt: skip
    encoded_train, truncated = _encode(tokenizer, train_set, labels, settings.max_length)
    encoded_validation, truncated_validation = _encode(tokenizer, validation, labels, settings.max_length)
    if truncated or truncated_validation:
        say(
            f"note: {truncated + truncated_validation} texts are longer than max_length {settings.max_length} tokens and were truncated"
        )

    loop = LoopSettings(**{f.name: getattr(settings, f.name) for f in fields(LoopSettings)})
    fingerprint = _fingerprint(inputs, settings, base, train_set, validation, labels, accelerator.num_processes)
    progress, best = train(
        model,
        tokenizer,
        encoded_train,
        encoded_validation,
        loop,
        accelerator,
        checkpoint_dir,
        fingerprint,
        inputs.resume,
    )
    metrics = _metrics(progress, settings, labels, train_set, validation, notes, truncated + truncated_validation)
    output = None
    if is_main:
        checkpoints.load_trainable(model, best)
        summary = {"lora": settings.apply_lora, "evaluations": len(progress.history), "best_step": progress.best_step,
                   "accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]}  # fmt: skip
        output = export(
            merged(model.cpu()), tokenizer, spec, base, inputs.output, summary,
            lambda folder: _write_reports(folder, metrics, progress.history),
        )  # fmt: skip
        if not inputs.keep_checkpoints:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    return FinetuneResult(output, labels, metrics)


class _FinetunedSpec(AssetSpec):
    """The base asset's spec as the finetuned model registers it: its own name, version, task and card."""

    def __init__(self, base: AssetSpec, digest: str, description: str):
        data = dict(base.data)
        data.update(name=base.name + REGISTERED_SUFFIX, version=digest[:12])
        data["tags"] = {**base.tags, "task": TASK, "base_model": base.name, "base_model_version": base.version}
        super().__init__(data, base.path)
        self._description = description

    @property
    def description(self) -> str:
        return self._description


def register_finetuned(spec: AssetSpec, model_dir: Path, registry_uri: str | None = None):
    """Register a finetuned model as NAME-text-classification; its version is its content digest, so
    registering the same model twice is a no-op and every different model gets a new version."""
    from distilgpt2_scoring.model_files import open_model

    from ..registry import LocalRegistry

    content = open_model(Path(model_dir), require_manifest=True)
    model_dir, digest = content.folder, content.digest
    card = model_dir / "model_card.md"
    description = card.read_text(encoding="utf-8") if card.is_file() else f"{spec.name} finetuned for {TASK}"
    return LocalRegistry(registry_uri).register(_FinetunedSpec(spec, digest, description), model_dir)

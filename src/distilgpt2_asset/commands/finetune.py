"""`finetune`: distilgpt2 -> a text classifier (LoRA by default), saved as an MLflow model and registered."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import default_build_dir
from ..spec import load_spec


def add_parser(subparsers) -> None:
    from ..finetune import FinetuneSettings

    defaults = FinetuneSettings()
    p = subparsers.add_parser(
        "finetune",
        help="finetune for text classification (LoRA) into an MLflow model",
        description="Finetune distilgpt2 as a sequence classifier on a JSONL or CSV dataset. The MLflow model "
        "goes to --output (metrics.json and training-curve.png inside) and is registered in the local registry "
        "as NAME-text-classification. Defaults for --apply-lora/--apply-deepspeed/--apply-ort come from "
        "spec.yaml's model_specific_defaults.",
    )
    data = p.add_argument_group("data")
    data.add_argument("--train", type=Path, required=True, help="training data: .jsonl (one object per line) or .csv (header row)")
    data.add_argument("--validation", type=Path, help="validation data (default: a seeded, stratified split of --train)")
    data.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    data.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    data.add_argument("--labels", help="comma-separated label list, in class-index order (default: the training labels, sorted)")
    data.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction, help="share of --train held out when there is no --validation (default: %(default)s)")

    model = p.add_argument_group("model and output")
    model.add_argument("--source", help="base model: hub id, Hugging Face folder, or the base asset's MLflow folder (default: spec.yaml's huggingface_model_id at its SHA)")
    model.add_argument("--revision", help="hub commit SHA (default: spec.yaml's SHA property)")
    model.add_argument("--output", type=Path, help="MLflow model folder (default: ~/.distilgpt2-asset/models/NAME-text-classification)")
    model.add_argument("--checkpoint-dir", type=Path, help="checkpoints (default: OUTPUT.checkpoints; removed after success unless --keep-checkpoints)")
    model.add_argument("--resume", action="store_true", help="continue the interrupted run whose checkpoint is in --checkpoint-dir")
    model.add_argument("--keep-checkpoints", action="store_true", help="keep the checkpoint folder after a successful run")
    model.add_argument("--no-register", dest="register", action="store_false", help="do not register the model in the local registry")
    model.add_argument("--registry-uri", help="MLflow registry URI (default: MLFLOW_TRACKING_URI or ~/.distilgpt2-asset/registry.db)")

    hyper = p.add_argument_group("training")
    hyper.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    hyper.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process (default: %(default)s)")
    hyper.add_argument("--learning-rate", type=float, help="default: 5e-4 with LoRA, 5e-5 without")
    hyper.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="default: %(default)s")
    hyper.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio, help="share of steps with rising learning rate (default: %(default)s)")
    hyper.add_argument("--max-length", type=int, default=defaults.max_length, help="tokens per text; longer texts are truncated (default: %(default)s)")
    hyper.add_argument("--eval-steps", type=int, help="evaluate and checkpoint every N steps (default: every epoch)")
    hyper.add_argument("--early-stopping-patience", type=int, default=defaults.early_stopping_patience, help="evaluations without a better f1_macro before stopping (default: %(default)s)")
    hyper.add_argument("--seed", type=int, default=defaults.seed, help="default: %(default)s")
    hyper.add_argument("--apply-lora", action=argparse.BooleanOptionalAction, help="train LoRA adapters (merged at export) instead of every weight")
    hyper.add_argument("--lora-r", type=int, default=defaults.lora_r, help="default: %(default)s")
    hyper.add_argument("--lora-alpha", type=int, default=defaults.lora_alpha, help="default: %(default)s")
    hyper.add_argument("--lora-dropout", type=float, default=defaults.lora_dropout, help="default: %(default)s")
    hyper.add_argument("--apply-deepspeed", action=argparse.BooleanOptionalAction, help="request DeepSpeed (reported when it cannot apply)")
    hyper.add_argument("--apply-ort", action=argparse.BooleanOptionalAction, help="request ONNX Runtime training (reported when it cannot apply)")
    p.set_defaults(handler=run)


def settings_from(args):
    from ..finetune import FinetuneSettings

    return FinetuneSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        max_length=args.max_length,
        eval_steps=args.eval_steps,
        early_stopping_patience=args.early_stopping_patience,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        apply_lora=args.apply_lora,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        apply_deepspeed=args.apply_deepspeed,
        apply_ort=args.apply_ort,
    )


def inputs_from(args, spec):
    from ..finetune import REGISTERED_SUFFIX, FinetuneInputs

    labels = tuple(name.strip() for name in args.labels.split(",") if name.strip()) if args.labels else None
    return FinetuneInputs(
        train=args.train,
        output=args.output or default_build_dir() / f"{spec.name}{REGISTERED_SUFFIX}",
        validation=args.validation,
        text_column=args.text_column,
        label_column=args.label_column,
        labels=labels,
        source=args.source,
        revision=args.revision,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        keep_checkpoints=args.keep_checkpoints,
    )


def run(args) -> int:
    from ..finetune import finetune, register_finetuned

    spec = load_spec()
    result = finetune(spec, inputs_from(args, spec), settings_from(args))
    if result.output is None:  # a torchrun worker other than rank 0: rank 0 reports
        return 0
    best = result.metrics["best"]
    print(f"finetuned: {result.output} (accuracy {best['accuracy']:.4f}, f1_macro {best['f1_macro']:.4f} at step {best['step']})")
    if args.register:
        registration = register_finetuned(spec, result.output, args.registry_uri)
        print(f"{registration.outcome}: {registration.name} {registration.asset_version} as {registration.model_uri}")
    return 0

"""`finetune`: distilgpt2 -> a text classifier, or a writer of your own text (--task text-generation);
LoRA by default; saved as an MLflow model and registered."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from ..paths import default_build_dir
from ..spec import load_spec


def add_parser(subparsers) -> None:
    from ..finetune import TASKS, FinetuneSettings

    p = subparsers.add_parser(
        "finetune",
        help="finetune for text classification or on your own text (LoRA) into an MLflow model",
        description="Finetune distilgpt2 as a sequence classifier on a JSONL or CSV dataset, or (--task "
        'text-generation) on your own text: JSONL of {"text": ...}, a .txt file or a folder of them, packed into '
        "sequences of the context, causal-LM loss, held-out perplexity before and after. The MLflow model "
        "goes to --output (metrics.json and training-curve.png inside; for text generation shaped like the base "
        "build, OpenVINO engine files included) and is registered in the local registry as "
        "NAME-text-classification or NAME-finetuned. Defaults for --apply-lora/--apply-deepspeed/--apply-ort "
        "come from spec.yaml's model_specific_defaults.",
    )
    p.add_argument("--task", choices=TASKS, default=TASKS[0], help="what to finetune for (default: %(default)s)")
    data = p.add_argument_group("data")
    data.add_argument(
        "--train",
        type=Path,
        required=True,
        help="training data: .jsonl (one object per line) or .csv (header row); text generation: .jsonl, "
        ".txt or a folder of them",
    )
    data.add_argument(
        "--validation",
        type=Path,
        help="validation data (default: a seeded split of --train: stratified by label, or of the packed sequences)",
    )
    data.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    data.add_argument("--label-column", default="label", help="column holding the label (default: label)")
    data.add_argument(
        "--labels",
        help="comma-separated label list, in class-index order (default: the training labels, sorted; "
        "text classification only)",
    )

    model = p.add_argument_group("model and output")
    model.add_argument(
        "--source",
        help="base model: hub id, Hugging Face folder, or the base asset's MLflow folder "
        "(default: spec.yaml's huggingface_model_id at its SHA)",
    )
    model.add_argument("--revision", help="hub commit SHA (default: spec.yaml's SHA property)")
    model.add_argument(
        "--output",
        type=Path,
        help="MLflow model folder (default: ~/.distilgpt2-asset/models/NAME-text-classification or NAME-finetuned)",
    )
    model.add_argument(
        "--checkpoint-dir",
        type=Path,
        help="checkpoints (default: OUTPUT.checkpoints; removed after success unless --keep-checkpoints)",
    )
    model.add_argument(
        "--resume", action="store_true", help="continue the interrupted run whose checkpoint is in --checkpoint-dir"
    )
    model.add_argument(
        "--keep-checkpoints", action="store_true", help="keep the checkpoint folder after a successful run"
    )
    model.add_argument(
        "--no-register", dest="register", action="store_false", help="do not register the model in the local registry"
    )
    model.add_argument(
        "--registry-uri", help="MLflow registry URI (default: MLFLOW_TRACKING_URI or ~/.distilgpt2-asset/registry.db)"
    )

    add_settings_options(p.add_argument_group("training"), FinetuneSettings)
    p.set_defaults(handler=run)


def add_settings_options(group, settings_class) -> None:
    """One option per field of the settings dataclass: --field-name, with the field's type, default and help."""
    hints = typing.get_type_hints(settings_class)
    for setting in dataclasses.fields(settings_class):
        kind = _option_type(hints[setting.name])
        help_text = setting.metadata["help"] + ("" if setting.default is None else " (default: %(default)s)")
        option = "--" + setting.name.replace("_", "-")
        if kind is bool:
            group.add_argument(option, action=argparse.BooleanOptionalAction, default=setting.default, help=help_text)
        else:
            group.add_argument(option, type=kind, default=setting.default, help=help_text)


def _option_type(hint) -> type:
    """int for `int` and for `int | None` (None: the option's absence)."""
    given = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return given[0] if given else hint


def settings_from(args):
    from ..finetune import FinetuneSettings

    return FinetuneSettings(
        **{setting.name: getattr(args, setting.name) for setting in dataclasses.fields(FinetuneSettings)}
    )


def inputs_from(args, spec):
    from ..finetune import REGISTERED_SUFFIXES, FinetuneInputs

    labels = tuple(name.strip() for name in args.labels.split(",") if name.strip()) if args.labels else None
    return FinetuneInputs(
        train=args.train,
        output=args.output or default_build_dir() / f"{spec.name}{REGISTERED_SUFFIXES[args.task]}",
        validation=args.validation,
        task=args.task,
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
    from ..finetune.runtime import leave_process_group

    spec = load_spec()
    try:
        result = finetune(spec, inputs_from(args, spec), settings_from(args))
    finally:
        leave_process_group()
    if result.output is None:  # a torchrun worker other than rank 0: rank 0 reports
        return 0
    print(f"finetuned: {result.output} ({_summary(result.metrics)})")
    if args.register:
        registration = register_finetuned(spec, result.output, args.registry_uri)
        print(f"{registration.outcome}: {registration.name} {registration.asset_version} as {registration.model_uri}")
    return 0


def _summary(metrics: dict) -> str:
    best = metrics["best"]
    if "perplexity" in metrics:  # text generation
        before, after = (metrics["perplexity"][when]["perplexity"] for when in ("before", "after"))
        return f"held-out perplexity {before:.2f} -> {after:.2f}; best validation loss at step {best['step']}"
    return f"accuracy {best['accuracy']:.4f}, f1_macro {best['f1_macro']:.4f} at step {best['step']}"

"""The model being finetuned: base model in (HF or MLflow folder, or the hub at the pinned SHA),
GPT2ForSequenceClassification (text classification) or GPT2LMHeadModel (text generation) with LoRA
adapters, and out again as a servable MLflow model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distilgpt2_scoring.model_files import ModelFilesError, locate_mlflow_folder, open_model

from ..build import MLFLOW_INFERENCE_IMAGE, check_snapshot, model_card, resolve_source, save_mlflow_model
from ..errors import AssetError
from ..spec import AssetSpec
from .release import TASK

LORA_TARGETS = ["c_attn"]  # GPT-2's fused q/k/v projection, as in the LoRA paper's GPT-2 runs


@dataclass(frozen=True)
class BaseModel:
    """Where the base weights and tokenizer are, and how the user named them."""

    weights: Path
    tokenizer: Path
    source: str
    revision: str
    content_sha256: str | None = None  # the base MLflow folder's content digest, when it has a manifest

    def metadata(self) -> dict[str, str]:
        """What a finetuned model's MLmodel records of its base, beside base_model_name."""
        recorded = {"source_model_id": self.source, "source_revision": self.revision}
        return recorded | ({"base_content_sha256": self.content_sha256} if self.content_sha256 else {})


def locate_base(spec: AssetSpec, source: str | None, revision: str | None) -> BaseModel:
    """A Hugging Face folder, an MLflow folder of the base asset (verified), or the hub at the pinned SHA."""
    source = source or spec.hf_model_id
    path = Path(source).expanduser()
    if path.is_dir():
        try:
            mlflow_dir = locate_mlflow_folder(path)
        except ModelFilesError:
            mlflow_dir = None
        if mlflow_dir is not None:
            digest = None
            if (mlflow_dir / "sha256-manifest.json").is_file():
                try:
                    digest = open_model(mlflow_dir, require_manifest=True).digest
                except ModelFilesError as exc:
                    raise AssetError(str(exc)) from None
            weights, tokenizer = mlflow_dir / "model", mlflow_dir / "components" / "tokenizer"
            check_snapshot(weights)
            tokenizer = tokenizer if tokenizer.is_dir() else weights
            return BaseModel(weights, tokenizer, source, revision or "local", digest)
    revision = revision or (spec.revision if not path.is_dir() else "local")
    folder = resolve_source(source, revision)
    check_snapshot(folder)
    return BaseModel(folder, folder, source, revision)


def load_tokenizer(base: BaseModel):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base.tokenizer, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise AssetError(f"{base.tokenizer}: cannot load the tokenizer: {exc}") from None
    tokenizer.pad_token = tokenizer.eos_token  # GPT-2 has no pad token; the classifier finds the last real token
    tokenizer.padding_side = "right"
    return tokenizer


def _check_gpt2(base: BaseModel) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base.weights, trust_remote_code=False)
    if config.model_type != "gpt2":
        raise AssetError(
            f"{base.weights}: a {config.model_type!r} model; finetuning here is for GPT-2 models (distilgpt2)"
        )


def load_language_model(base: BaseModel):
    """GPT2LMHeadModel on the base weights, every one of them (text generation)."""
    from transformers import GPT2LMHeadModel

    _check_gpt2(base)
    try:
        return GPT2LMHeadModel.from_pretrained(base.weights, use_safetensors=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise AssetError(f"{base.weights}: cannot load the base model: {exc}") from None


def load_classifier(base: BaseModel, labels: list[str], pad_token_id: int):
    """GPT2ForSequenceClassification on the base weights; the classification head starts fresh."""
    from transformers import GPT2ForSequenceClassification
    from transformers.utils import logging as hf_logging

    _check_gpt2(base)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report lists score.weight as missing: expected, it is new
    try:
        model = GPT2ForSequenceClassification.from_pretrained(
            base.weights,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            pad_token_id=pad_token_id,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError) as exc:
        raise AssetError(f"{base.weights}: cannot load the base model: {exc}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = pad_token_id
    return model


def add_lora(model, r: int, alpha: int, dropout: float, task_type: str = "SEQ_CLS"):
    """LoRA adapters on the attention projections. SEQ_CLS: the classification head trains in full;
    CAUSAL_LM: nothing else trains (the LM head is the frozen token embedding)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        task_type=task_type,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGETS,
        fan_in_fan_out=True,  # GPT-2's Conv1D stores weights transposed
    )
    with warnings.catch_warnings():  # peft 0.21 calls an API transformers 5 deprecated; nothing to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def merged(model):
    """The plain transformers model to export: LoRA adapters merged into the weights."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.eval()


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string")]),
        outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")]),
    )


def _description(spec: AssetSpec, labels: list[str], summary: dict[str, Any]) -> str:
    return (
        f"# {spec.name} finetuned for text classification\n\n"
        f"{spec.name} ({spec.hf_model_id} @ {spec.revision[:12]}) with a sequence-classification head, "
        "finetuned by `distilgpt2-asset finetune`"
        f"{' with LoRA (merged into the weights)' if summary['lora'] else ''}.\n\n"
        f"Labels: {', '.join(labels)}.\n\n"
        f"Validation: accuracy {summary['accuracy']:.4f}, f1_macro {summary['f1_macro']:.4f} "
        f"(best of {summary['evaluations']} evaluations, at step {summary['best_step']}).\n\n"
        'Request: `{"input_data": ["text", ...]}`; response: one `{"label", "score"}` per text.\n'
    )


def export(
    model,
    tokenizer,
    spec: AssetSpec,
    base: BaseModel,
    output: Path,
    summary: dict[str, Any],
    add_files: Callable[[Path], None],
) -> Path:
    """Save the merged classifier as an MLflow model (transformers flavor, task text-classification)."""
    from transformers import pipeline

    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    pipe = pipeline(TASK, model=model.to(torch.device("cpu")), tokenizer=tokenizer)
    metadata = {
        "base_model_name": spec.name,
        "base_model_task": spec.task,
        "finetuning_task": TASK,
        "is_finetuned_model": True,
        "azureml.base_image": MLFLOW_INFERENCE_IMAGE,
        **base.metadata(),
        "labels": json.dumps(labels),
    }
    return save_mlflow_model(
        pipe,
        output,
        task=TASK,
        signature=_signature(),
        metadata=metadata,
        model_card=model_card(spec, _description(spec, labels, summary)),
        source=base.source,
        add_files=add_files,
    )

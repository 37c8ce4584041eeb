"""Finetuning the tiny model for text classification: learns, keeps LoRA honest, exports, resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.finetune import FinetuneSettings, checkpoints, finetune, register_finetuned
from distilgpt2_asset.finetune.loop import Encoded, LoopSettings, data_loader, train
from distilgpt2_asset.finetune.model import add_lora, load_classifier, load_tokenizer, locate_base
from distilgpt2_asset.finetune.runtime import accelerator_notes, start_accelerator
from distilgpt2_scoring.model_files import verify_manifest

from . import resume_scenario
from .conftest import TOY_SETTINGS

ROOT = Path(__file__).resolve().parents[2]

TEXTS = ["we talked about the river", "he asked about the software", "they watched the boats"]


def test_a_separable_toy_dataset_reaches_f1_macro_0_9(finetuned):
    result, _ = finetuned
    metrics = json.loads((result.output / "metrics.json").read_text())
    assert metrics["f1_macro"] >= 0.9 and metrics["accuracy"] >= 0.9
    assert metrics == result.metrics
    assert [h["step"] for h in metrics["history"]] == [6, 12, 18]  # 48 examples / 8 per batch, every epoch
    assert (result.output / "training-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_output_is_a_text_classification_mlflow_model_keeping_label_names(finetuned):
    result, _ = finetuned
    mlmodel = yaml.safe_load((result.output / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["transformers"]
    assert flavor["task"] == "text-classification"
    assert flavor["pipeline_model_type"] == "GPT2ForSequenceClassification"
    assert mlmodel["metadata"]["is_finetuned_model"] is True
    config = json.loads((result.output / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "software", "1": "water"}
    assert config["label2id"] == {"software": 0, "water": 1}
    assert config["pad_token_id"] == 50256
    assert "metrics.json" in verify_manifest(result.output)  # reports are covered by the manifest too


def test_unrequested_accelerators_are_reported_never_silently_dropped(finetuned, asset_spec):
    result, _ = finetuned
    notes = result.metrics["accelerators"]
    assert asset_spec.model_specific_defaults["apply_deepspeed"] and asset_spec.model_specific_defaults["apply_ort"]
    assert notes["apply_deepspeed"] == "apply_deepspeed requested but no CUDA device: training without DeepSpeed"
    assert "no CUDA device" in notes["apply_ort"]


def test_on_a_gpu_a_requested_accelerator_names_the_module_it_lacks():
    notes = accelerator_notes({"apply_deepspeed": True, "apply_ort": True}, torch.device("cuda"))
    assert (
        notes["apply_ort"]
        == "apply_ort requested but onnxruntime.training is not installed: training without ONNX Runtime training"
    )
    assert (
        notes["apply_deepspeed"]
        == "apply_deepspeed requested but deepspeed is not installed: training without DeepSpeed"
    )


def test_defaults_for_the_apply_flags_come_from_spec_yaml(asset_spec):
    resolved = FinetuneSettings().resolved(asset_spec)
    for flag in ("apply_lora", "apply_deepspeed", "apply_ort"):
        assert getattr(resolved, flag) == asset_spec.model_specific_defaults[flag]
    assert FinetuneSettings(apply_lora=False).resolved(asset_spec).apply_lora is False


def test_with_lora_the_base_weights_stay_byte_identical_and_only_adapters_change(asset_spec, tiny_model_dir, tmp_path):
    base = locate_base(asset_spec, str(tiny_model_dir), None)
    tokenizer = load_tokenizer(base)
    model = add_lora(load_classifier(base, ["a", "b"], tokenizer.pad_token_id), r=4, alpha=8, dropout=0.0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    data = Encoded([tokenizer.encode(t) for t in TEXTS * 2], [0, 1, 0] * 2)
    settings = LoopSettings(1, 2, 1e-2, 0.0, 0.0, None, 3, 0)
    train(model, tokenizer, data, data, settings, start_accelerator(seed=0), tmp_path, {}, False)

    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    assert all("lora_" in name or ".score.modules_to_save." in name for name in trainable)
    assert any("lora_B" in name for name in changed)
    frozen = [name for name in before if name not in trainable]
    assert frozen and all(torch.equal(dict(model.named_parameters())[n], before[n]) for n in frozen)


def test_the_best_weights_are_a_copy_that_training_does_not_change(asset_spec, tiny_model_dir):
    model = load_classifier(locate_base(asset_spec, str(tiny_model_dir), None), ["a", "b"], 0)
    best = checkpoints.trainable_weights(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert all(not torch.equal(best[name], p) for name, p in model.named_parameters())


def test_the_exported_model_is_the_adapter_model_merged(finetuned, asset_spec):
    from transformers import AutoModelForSequenceClassification

    result, checkpoint_dir = finetuned
    base = locate_base(asset_spec, locate_source(result), None)
    tokenizer = load_tokenizer(base)
    adapted = add_lora(load_classifier(base, result.labels, tokenizer.pad_token_id), r=8, alpha=16, dropout=0.1)
    checkpoints.load_trainable(adapted, checkpoints.read_best(checkpoint_dir))
    exported = AutoModelForSequenceClassification.from_pretrained(result.output / "model", use_safetensors=True)
    assert not any("lora" in key for key in load_file(result.output / "model" / "model.safetensors"))
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(
            exported.eval()(**batch).logits, adapted.eval()(**batch).logits, atol=1e-5, rtol=1e-4
        )


def locate_source(result) -> str:
    return yaml.safe_load((result.output / "MLmodel").read_text())["metadata"]["source_model_id"]


def test_resuming_continues_where_the_run_stopped(finetuned, asset_spec, toy_inputs, tmp_path, monkeypatch, capsys):
    reference, _ = finetuned
    inputs = toy_inputs(tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints")
    save = checkpoints.save_checkpoint

    def interrupt_after_first_checkpoint(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt  # as if Ctrl-C (or a preempted node) right after epoch 1

    monkeypatch.setattr(checkpoints, "save_checkpoint", interrupt_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        finetune(asset_spec, inputs, FinetuneSettings(**TOY_SETTINGS))
    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    assert checkpoints.read_state(inputs.checkpoint_dir)["progress"]["step"] == 6
    assert not inputs.output.exists()

    with pytest.raises(AssetError, match="holds a checkpoint of an earlier run; pass --resume"):
        finetune(asset_spec, inputs, FinetuneSettings(**TOY_SETTINGS))
    resumed = toy_inputs(tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints", resume=True)
    with pytest.raises(AssetError, match=r"different run \(learning_rate: 0\.005 then, 0\.001 now\)"):
        finetune(asset_spec, resumed, FinetuneSettings(**{**TOY_SETTINGS, "learning_rate": 1e-3}))

    capsys.readouterr()
    result = finetune(asset_spec, resumed, FinetuneSettings(**TOY_SETTINGS))
    assert "resuming at step 6/18 (epoch 2)" in capsys.readouterr().out
    assert result.metrics["history"] == reference.metrics["history"]
    weights = "model/model.safetensors"
    assert (result.output / weights).read_bytes() == (reference.output / weights).read_bytes()
    assert not inputs.checkpoint_dir.exists()  # removed after success unless kept


def assert_the_resumed_run_repeats_the_uninterrupted_one(outcome: dict, processes: int) -> None:
    assert outcome["processes"] == processes
    assert outcome["stopped_at"] == resume_scenario.FIRST_CHECKPOINT
    assert outcome["resumed"]["history"] == outcome["uninterrupted"]["history"]
    assert outcome["resumed"]["weights_sha256"] == outcome["uninterrupted"]["weights_sha256"]


def test_resuming_inside_an_epoch_repeats_the_uninterrupted_run(toy_dataset, tiny_model_dir, tmp_path):
    train, validation = toy_dataset
    outcome = resume_scenario.run(tmp_path, str(tiny_model_dir), train, validation)
    assert_the_resumed_run_repeats_the_uninterrupted_one(outcome, processes=1)


@pytest.mark.slow
def test_resuming_under_torchrun_repeats_the_uninterrupted_run_in_every_process(toy_dataset, tiny_model_dir, tmp_path):
    train, validation = toy_dataset
    result = tmp_path / "result.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        resume_scenario.__file__,
        str(result),
        str(tmp_path),
        str(tiny_model_dir),
        str(train),
        str(validation),
    ]
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "scoring"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert_the_resumed_run_repeats_the_uninterrupted_one(json.loads(result.read_text()), processes=2)


def test_a_checkpoint_of_an_older_format_is_refused_naming_the_format(tmp_path):
    (tmp_path / checkpoints.LAST).mkdir()
    (tmp_path / checkpoints.LAST / checkpoints.STATE).write_text('{"fingerprint": {}, "progress": {}}')
    with pytest.raises(AssetError, match=r"a checkpoint of format 1; this version resumes format 3 only"):
        checkpoints.read_state(tmp_path)


def test_training_batches_are_padded_by_the_tokenizer_on_the_right(asset_spec, tiny_model_dir):
    tokenizer = load_tokenizer(locate_base(asset_spec, str(tiny_model_dir), None))
    batch = next(iter(data_loader(Encoded([[5, 6, 7], [8]], [1, 0]), tokenizer, batch_size=2, shuffle=False, seed=0)))
    pad = tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, pad, pad]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]


def test_resume_without_a_checkpoint_says_where_it_looked(asset_spec, toy_inputs, tmp_path):
    inputs = toy_inputs(tmp_path / "model", resume=True)
    with pytest.raises(AssetError, match=r"--resume: no checkpoint in .*model\.checkpoints"):
        finetune(asset_spec, inputs, FinetuneSettings(**TOY_SETTINGS))


def test_the_finetuned_model_registers_as_its_own_model(finetuned, asset_spec, isolated_home):
    result, _ = finetuned
    first = register_finetuned(asset_spec, result.output)
    again = register_finetuned(asset_spec, result.output)
    assert (first.name, first.outcome, again.outcome) == ("distilgpt2-text-classification", "created", "unchanged")
    from distilgpt2_asset.registry import LocalRegistry

    version = LocalRegistry().client.get_model_version(first.name, first.mlflow_version)
    assert version.tags["task"] == "text-classification"
    assert version.tags["base_model"] == asset_spec.name and version.tags["base_model_version"] == asset_spec.version

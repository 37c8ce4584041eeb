"""`distilgpt2-asset finetune` end to end, and the Azure job's entry script under torchrun."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from distilgpt2_asset.cli import main
from distilgpt2_asset.finetune import FinetuneSettings
from distilgpt2_asset.paths import PACKAGE_DATA

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PACKAGE_DATA / "classification"


def finetune_options() -> dict:
    from distilgpt2_asset.cli import parser

    finetune_parser = parser()._subparsers._group_actions[0].choices["finetune"]
    return {action.dest: action for action in finetune_parser._actions}


def test_every_finetune_setting_is_an_option_with_the_fields_type_default_and_help():
    options = finetune_options()
    for setting in dataclasses.fields(FinetuneSettings):
        option = options[setting.name]
        assert option.option_strings[0] == "--" + setting.name.replace("_", "-")
        assert option.default == setting.default
        assert option.help.startswith(setting.metadata["help"])
    assert (
        options["epochs"].type is int and options["learning_rate"].type is float and options["eval_steps"].type is int
    )
    assert options["apply_lora"].option_strings == ["--apply-lora", "--no-apply-lora"]


def test_finetune_options_become_the_settings():
    from distilgpt2_asset.cli import parser
    from distilgpt2_asset.commands.finetune import settings_from

    args = parser().parse_args([
        "finetune", "--train", "t.jsonl", "--epochs", "5", "--learning-rate", "0.01", "--eval-steps", "3",
        "--lora-dropout", "0", "--no-apply-lora", "--apply-ort",
    ])  # fmt: skip
    settings = settings_from(args)
    assert settings == FinetuneSettings(
        epochs=5, learning_rate=0.01, eval_steps=3, lora_dropout=0.0, apply_lora=False, apply_ort=True
    )
    assert type(settings.epochs) is int and settings.apply_deepspeed is None  # absent: spec.yaml's default


def test_full_finetuning_from_the_base_mlflow_model_on_the_shipped_data(
    tiny_mlflow_model, tmp_path, capsys, isolated_home
):
    code = main([
        "finetune", "--source", str(tiny_mlflow_model), "--train", str(SHIPPED / "train.jsonl"),
        "--validation", str(SHIPPED / "validation.jsonl"), "--output", str(tmp_path / "model"),
        "--no-apply-lora", "--no-apply-deepspeed", "--no-apply-ort", "--epochs", "1", "--batch-size", "16",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"training ([\d,]+) of \1 weights \(all\)", out) and "note:" not in out
    assert "created: distilgpt2-text-classification" in out
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["labels"] == ["anger", "fear", "joy", "sadness"] and metrics["accelerators"] == {}
    assert metrics["train_examples"] == 48 and metrics["validation_examples"] == 16


@pytest.mark.slow
def test_the_job_entry_script_trains_under_torchrun_with_two_processes(toy_dataset, tiny_model_dir, tmp_path):
    train, validation = toy_dataset
    output = tmp_path / "job-output"
    output.mkdir()  # Azure mounts the output folder before the job starts
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(ROOT / "jobs" / "finetune" / "train.py"), "--model-output", str(output), "--source", str(tiny_model_dir),
        "--train", str(train), "--validation", str(validation), "--epochs", "1", "--batch-size", "8",
        "--learning-rate", "0.005", "--apply-lora", "--apply-deepspeed", "--no-apply-ort",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "x 2 processes" in run.stdout and "MLflow model written to" in run.stdout
    assert "apply_deepspeed requested but no CUDA device: training without DeepSpeed" in run.stdout
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["steps"] == 3  # 48 examples, 2 processes x 8 per batch
    assert (output / "MLmodel").is_file()

"""jobs/finetune-text-classification.yml: loads with the real azure.ai.ml loader and agrees with spec.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distilgpt2_asset.finetune import LEARNING_RATE, FinetuneSettings
from distilgpt2_asset.validate import validate_yaml_file

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "jobs" / "finetune-text-classification.yml"


@pytest.fixture(scope="module")
def job():
    from azure.ai.ml import load_job

    return load_job(JOB)


def test_it_is_a_pytorch_distributed_command_job_writing_an_mlflow_model(job):
    assert job.type == "command"
    assert job.distribution.type == "pytorch" and job.distribution.process_count_per_instance >= 1
    assert job.resources.instance_count >= 1
    assert job.outputs["model"].type == "mlflow_model"
    assert {"train", "validation", "base_model", "epochs", "learning_rate"} <= set(job.inputs)


def test_its_compute_and_base_model_agree_with_spec_yaml(job, asset_spec):
    assert job.resources.instance_type in asset_spec.allow_list("finetune")
    assert validate_yaml_file(JOB, asset_spec) == []
    assert (
        job.inputs["base_model"].path
        == f"azureml://registries/azureml/models/{asset_spec.name}/versions/{asset_spec.version}"
    )


def test_its_hyper_parameters_are_the_finetune_defaults(asset_spec):
    inputs = yaml.safe_load(JOB.read_text())["inputs"]
    defaults, flags = FinetuneSettings(), asset_spec.model_specific_defaults
    for name in ("epochs", "batch_size", "max_length", "early_stopping_patience", "seed", "lora_r", "lora_alpha"):
        assert inputs[name] == getattr(defaults, name), name
    assert inputs["learning_rate"] == LEARNING_RATE[flags["apply_lora"]]
    for name, flag in (("lora", "apply-lora"), ("deepspeed", "apply-deepspeed"), ("ort", "apply-ort")):
        assert inputs[name] == (flag if flags[flag.replace("-", "_")] else "no-" + flag)


def test_its_environment_is_environments_training(job):
    environment = yaml.safe_load((ROOT / "environments" / "training" / "environment.yml").read_text())
    raw = yaml.safe_load(JOB.read_text())["environment"]
    assert raw["image"] == environment["image"]
    assert (JOB.parent / raw["conda_file"]).resolve() == (
        ROOT / "environments" / "training" / environment["conda_file"]
    ).resolve()


def test_its_command_passes_only_options_the_finetune_command_knows(job):
    from distilgpt2_asset.cli import parser

    options = [word for word in job.command.split() if word.startswith("--") and "${{" not in word]
    known = {
        option
        for action in parser()._subparsers._group_actions[0].choices["finetune"]._actions
        for option in action.option_strings
    }
    assert set(options) - {"--model-output"} <= known


def test_the_shipped_demo_data_is_what_the_job_reads(job):
    for name in ("train", "validation"):
        assert (JOB.parent / yaml.safe_load(JOB.read_text())["inputs"][name]["path"]).resolve().is_file()

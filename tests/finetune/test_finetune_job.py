"""jobs/finetune-text-classification.yml and finetune-text-generation.yml: load with the real azure.ai.ml
loader, pass the SDK's pre-submit validation and agree with spec.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distilgpt2_asset.finetune import LEARNING_RATE, FinetuneSettings
from distilgpt2_asset.validate import validate_yaml_file

ROOT = Path(__file__).resolve().parents[2]
JOB = ROOT / "jobs" / "finetune-text-classification.yml"
GENERATION_JOB = ROOT / "jobs" / "finetune-text-generation.yml"


@pytest.fixture(scope="module", params=[JOB, GENERATION_JOB], ids=["text-classification", "text-generation"])
def job_file(request) -> Path:
    return request.param


@pytest.fixture(scope="module")
def job(job_file):
    from azure.ai.ml import load_job

    return load_job(job_file)


def test_it_is_a_pytorch_distributed_command_job_writing_an_mlflow_model(job):
    assert job.type == "command"
    assert job.distribution.type == "pytorch" and job.distribution.process_count_per_instance >= 1
    assert job.resources.instance_count >= 1
    assert job.outputs["model"].type == "mlflow_model"
    assert {"train", "validation", "base_model", "epochs", "learning_rate"} <= set(job.inputs)


def test_its_compute_and_base_model_agree_with_spec_yaml(job, job_file, asset_spec):
    assert job.resources.instance_type in asset_spec.allow_list("finetune")
    assert validate_yaml_file(job_file, asset_spec) == []  # the loaders and the SDK's pre-submit checks
    assert (
        job.inputs["base_model"].path
        == f"azureml://registries/azureml/models/{asset_spec.name}/versions/{asset_spec.version}"
    )


def test_its_hyper_parameters_are_the_finetune_defaults(job_file, asset_spec):
    inputs = yaml.safe_load(job_file.read_text())["inputs"]
    defaults, flags = FinetuneSettings().resolved(asset_spec), asset_spec.model_specific_defaults
    names = ["epochs", "batch_size", "early_stopping_patience", "seed", "lora_r", "lora_alpha"]
    for name in names + (["max_length"] if job_file == JOB else []):  # text generation: sized to the demo data
        assert inputs[name] == getattr(defaults, name), name
    assert inputs["learning_rate"] == LEARNING_RATE[flags["apply_lora"]]
    for name, flag in (("lora", "apply-lora"), ("deepspeed", "apply-deepspeed"), ("ort", "apply-ort")):
        assert inputs[name] == (flag if flags[flag.replace("-", "_")] else "no-" + flag)


def test_its_environment_is_environments_training(job_file):
    environment = yaml.safe_load((ROOT / "environments" / "training" / "environment.yml").read_text())
    raw = yaml.safe_load(job_file.read_text())["environment"]
    assert raw["image"] == environment["image"]
    assert (job_file.parent / raw["conda_file"]).resolve() == (
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


def test_the_shipped_demo_data_is_what_the_job_reads(job_file):
    for name in ("train", "validation"):
        assert (job_file.parent / yaml.safe_load(job_file.read_text())["inputs"][name]["path"]).resolve().is_file()


def test_the_text_generation_job_asks_for_text_generation(job_file, job):
    assert ("--task text-generation" in job.command) == (job_file == GENERATION_JOB)

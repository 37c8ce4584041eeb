"""The card's evaluation sample as an Azure ML pipeline job: loads with azure.ai.ml, agrees with spec.yaml."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

from distilgpt2_asset.metrics import METRIC_NAMES
from distilgpt2_asset.validate import validate_yaml_file

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "evaluate-model-text-generation.yml"
EVALUATION = REPO / "jobs" / "evaluation"
COMPONENT = "azureml://registries/azureml/components/model_evaluation_pipeline/labels/latest"


@pytest.fixture(scope="module")
def job():
    from azure.ai.ml import load_job

    return load_job(JOB)


@pytest.fixture(scope="module")
def evaluate_inputs(job) -> dict:
    return {name: value._data for name, value in job.jobs["evaluate"].inputs.items()}


@pytest.fixture(scope="module")
def prepare_script():
    spec = importlib.util.spec_from_file_location("prepare_cnn_dailymail", EVALUATION / "prepare_cnn_dailymail.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_is_a_pipeline_of_data_preparation_then_azure_model_evaluation(job):
    assert job.type == "pipeline"
    assert list(job.jobs) == ["prepare_data", "evaluate"]
    assert job.jobs["evaluate"].component == COMPONENT


def test_evaluation_inputs_match_the_component_and_the_prepared_columns(evaluate_inputs):
    # Input names of model_evaluation_pipeline (azureml-assets pipeline_component/spec.yaml).
    assert evaluate_inputs["task"] == "text-generation"
    assert evaluate_inputs["test_data"] == "${{parent.jobs.prepare_data.outputs.test_data}}"
    assert evaluate_inputs["input_column_names"] == "input_string"
    assert evaluate_inputs["label_column_name"] == "ground_truth"
    assert evaluate_inputs["mlflow_model"].type == "mlflow_model"
    assert evaluate_inputs["evaluation_config"].type == "uri_file"


def test_model_is_the_registry_asset_named_in_spec_yaml(evaluate_inputs, asset_spec):
    expected = f"azureml://registries/azureml/models/{asset_spec.name}/versions/{asset_spec.version}"
    assert evaluate_inputs["mlflow_model"].path == expected


def test_every_compute_size_is_in_the_evaluation_allow_list(job, evaluate_inputs, asset_spec):
    allowed = set(asset_spec.allow_list("evaluation"))
    assert job.jobs["prepare_data"].resources.instance_type in allowed
    # The component runs its own steps on compute_name / instance_type (validate.py sees only
    # node resources, so this input is checked here).
    assert evaluate_inputs["compute_name"] == "serverless"
    assert evaluate_inputs["instance_type"] in allowed


def test_validate_accepts_the_job_and_catches_a_size_outside_the_allow_list(tmp_path, asset_spec):
    assert validate_yaml_file(JOB, asset_spec) == []
    data = yaml.safe_load(JOB.read_text())
    data["jobs"]["prepare_data"]["resources"]["instance_type"] = "Standard_NV6"
    shutil.copytree(EVALUATION, tmp_path / "evaluation")
    bad = tmp_path / JOB.name
    bad.write_text(yaml.safe_dump(data))
    problems = validate_yaml_file(bad, asset_spec)
    assert [p.rule for p in problems] == ["allow-list"]
    assert "Standard_NV6" in problems[0].message


def test_evaluation_config_asks_for_the_card_metrics_under_names_we_also_compute(evaluate_inputs):
    config_path = JOB.parent / evaluate_inputs["evaluation_config"].path
    metrics = json.loads(config_path.read_text())["metrics"]
    assert metrics == ["rouge1", "rouge2", "bleu_3", "bleu_4"]
    assert set(metrics) <= set(METRIC_NAMES)


def test_data_preparation_step_runs_the_script_with_the_card_settings(job):
    step = job.jobs["prepare_data"]
    assert (JOB.parent / step.code).resolve() == EVALUATION  # code paths are relative to the YAML
    assert "prepare_cnn_dailymail.py" in step.command
    inputs = {name: value._data for name, value in step.inputs.items()}
    assert (inputs["rows"], inputs["prompt_chars"]) == (1000, 100)
    conda = yaml.safe_load((EVALUATION / "prepare-data-conda.yml").read_text())
    pins = conda["dependencies"][-1]["pip"]
    assert all("==" in pin for pin in pins)


def test_data_preparation_takes_the_first_rows_with_100_character_prompts(prepare_script):
    articles = (f"Article {i}: " + "word " * 50 for i in range(10))
    records = list(prepare_script.evaluation_records(articles, rows=3, prompt_chars=100))
    assert len(records) == 3
    for i, record in enumerate(records):
        assert record["ground_truth"].startswith(f"Article {i}:")
        assert record["input_string"] == record["ground_truth"][:100]
    assert prepare_script.DATASET_CONFIG == "3.0.0" and prepare_script.SPLIT == "test"


def test_data_preparation_output_is_read_by_evaluate(prepare_script, tmp_path):
    from distilgpt2_asset.evaluation_data import read_evaluation_rows

    path = tmp_path / "out" / "test.jsonl"
    records = prepare_script.evaluation_records(["Ünïcode — quotes “here” " * 10, "second " * 30], 2, 100)
    assert prepare_script.write_jsonl(records, path) == 2
    rows = read_evaluation_rows(path)
    assert [len(row.prompt) for row in rows] == [100, 100]
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.jsonl"]  # no staging file left


def test_data_preparation_script_imports_nothing_from_this_package():
    # Azure uploads jobs/evaluation/ alone as the step's code.
    source = (EVALUATION / "prepare_cnn_dailymail.py").read_text()
    assert "distilgpt2_asset" not in source

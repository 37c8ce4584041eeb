"""The card's evaluation sample as an Azure ML pipeline job: loads with azure.ai.ml, passes its
pre-submit validation, agrees with spec.yaml, and feeds the component data in the form it reads."""

import importlib.util
import json
import re
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml

from distilgpt2_asset.evaluation.metrics import METRIC_NAMES, corpus_bleu, rouge_per_row, text_generation_metrics
from distilgpt2_asset.validate import validate_yaml_file

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "evaluate-model-text-generation.yml"
EVALUATION = REPO / "jobs" / "evaluation"
# Pinned: the last version in azureml-assets' history of the (deprecated) component.
COMPONENT = "azureml://registries/azureml/components/model_evaluation_pipeline/versions/0.0.36"


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


def test_job_passes_the_sdks_own_pre_submit_validation(job):
    # What `az ml job create` and MLClient.jobs.create_or_update run before sending anything.
    result = job._validate()
    assert result.passed, result.error_messages
    assert job.settings.default_compute == "serverless"


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


@pytest.fixture(scope="module")
def evaluation_config(evaluate_inputs) -> dict:
    return json.loads((JOB.parent / evaluate_inputs["evaluation_config"].path).read_text())


def test_evaluation_config_asks_for_the_card_metrics_under_names_we_also_compute(evaluation_config):
    assert evaluation_config["metrics"] == ["rouge1", "rouge2", "bleu_3", "bleu_4"]
    assert set(evaluation_config["metrics"]) <= set(METRIC_NAMES)


def test_evaluation_config_sets_the_options_our_local_metrics_implement(evaluation_config):
    # The sample's keys (azureml-examples text-generation README: aggregator, stemmer, smoothing),
    # set to the definitions of distilgpt2_asset.evaluation.metrics, so Azure's numbers and ours compare.
    assert set(evaluation_config) == {"metrics", "aggregator", "stemmer", "smoothing"}
    assert evaluation_config["stemmer"] is False
    assert rouge_per_row(["the dogs barked"], ["the dog barks"])[0]["rouge1"] == pytest.approx(1 / 3)  # no stemming
    assert evaluation_config["smoothing"] is False
    assert corpus_bleu(["a b c d"], ["a b c e"], 4) == 0.0  # no 4-gram matches: 0 without smoothing
    assert evaluation_config["aggregator"] is True
    metrics, per_row = text_generation_metrics(["a b", "c d"], ["a b", "x y"])
    assert metrics["rouge1"] == pytest.approx(sum(row["rouge1"] for row in per_row) / 2)  # the mean over rows


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
    from distilgpt2_asset.evaluation.data import read_evaluation_rows

    path = tmp_path / "out" / "test.jsonl"
    records = prepare_script.evaluation_records(["Ünïcode — quotes “here” " * 10, "second " * 30], 2, 100)
    assert prepare_script.write_jsonl(records, path) == 2
    rows = read_evaluation_rows(path)
    assert [len(row.prompt) for row in rows] == [100, 100]
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.jsonl"]  # no staging file left


def install_fake_hub(monkeypatch, articles: list[str]) -> None:
    """huggingface_hub.HfApi and datasets.load_dataset as the step meets them, without the network."""
    import huggingface_hub

    class HfApi:
        def dataset_info(self, repo_id, revision):
            return types.SimpleNamespace(sha="c" * 40)

    def load_dataset(repo_id, config, split, streaming, revision):
        return ({"article": text, "highlights": "", "id": str(i)} for i, text in enumerate(articles))

    monkeypatch.setattr(huggingface_hub, "HfApi", HfApi)
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))


def step_arguments(step, output: Path) -> list[str]:
    """The step's command line as Azure runs it: inputs substituted, the uri_file output a file path."""
    values = {f"inputs.{name}": str(value._data) for name, value in step.inputs.items()}
    values["outputs.test_data"] = str(output)
    command = re.sub(r"\$\{\{(.+?)\}\}", lambda m: values[m.group(1).strip()], step.command)
    words = command.split()
    assert words[:2] == ["python", "prepare_cnn_dailymail.py"]
    return words[2:]


def test_prepared_data_is_the_component_input_it_reads(job, evaluate_inputs, prepare_script, tmp_path, monkeypatch):
    import pandas as pd

    step = job.jobs["prepare_data"]
    assert step.outputs["test_data"].type == "uri_file"
    assert evaluate_inputs["test_data"] == "${{parent.jobs.prepare_data.outputs.test_data}}"
    rows, prompt_chars = int(step.inputs["rows"]._data), int(step.inputs["prompt_chars"]._data)
    install_fake_hub(monkeypatch, [f"Article {i}: " + "the river ran past the old mill " * 8 for i in range(rows + 5)])
    output = tmp_path / "mount" / "test_data"  # the path Azure gives a uri_file output
    assert prepare_script.main(step_arguments(step, output)) == 0
    # One file, not a folder (the component's read_data refuses a folder without an MLTable) ...
    assert output.is_file() and [p.name for p in output.parent.iterdir()] == ["test_data"]
    # ... read as azureml-assets' model_evaluation read_dataframe reads it: JSON Lines, dtype=False.
    frame = pd.read_json(output, lines=True, dtype=False)
    assert len(frame) == rows
    assert list(frame.columns) == [evaluate_inputs["input_column_names"], evaluate_inputs["label_column_name"]]
    assert (frame["input_string"].str.len() == prompt_chars).all()
    assert (frame.apply(lambda row: row["ground_truth"].startswith(row["input_string"]), axis=1)).all()


def test_data_preparation_script_imports_nothing_from_this_package():
    # Azure uploads jobs/evaluation/ alone as the step's code.
    source = (EVALUATION / "prepare_cnn_dailymail.py").read_text()
    assert "distilgpt2_asset" not in source

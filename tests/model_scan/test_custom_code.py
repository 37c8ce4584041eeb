"""custom_code: no config naming code shipped with the model; an MLmodel without code or custom flavors."""

from __future__ import annotations

import json

import yaml

from distilgpt2_asset.model_scan.custom_code import check_json_configs, check_mlmodel


def test_auto_map_and_custom_pipelines_in_any_config_are_findings(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "auto_map": {"AutoModel": "x.Y"}}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"custom_pipelines": {"p": {}}}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"do_sample": True}))
    files = {path.name: path for path in tmp_path.iterdir()}
    assert sorted((f.file, f.message.split(" names")[0]) for f in check_json_configs(files)) == [
        ("config.json", "auto_map"),
        ("tokenizer_config.json", "custom_pipelines"),
    ]


def mlmodel_findings(tmp_path, tiny_mlflow_model, change):
    mlmodel = yaml.safe_load((tiny_mlflow_model / "MLmodel").read_text())
    change(mlmodel)
    (tmp_path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return [f.message for f in check_mlmodel("MLmodel", tmp_path / "MLmodel")]


def test_the_builds_mlmodel_passes(tmp_path, tiny_mlflow_model):
    assert mlmodel_findings(tmp_path, tiny_mlflow_model, lambda mlmodel: None) == []


def test_code_in_mlmodel_is_a_finding(tmp_path, tiny_mlflow_model):
    def with_code(mlmodel):
        mlmodel["flavors"]["transformers"]["code"] = "code"

    assert mlmodel_findings(tmp_path, tiny_mlflow_model, with_code) == [
        "flavor 'transformers' has code 'code'; it must be null"
    ]


def test_a_custom_python_model_is_a_finding(tmp_path, tiny_mlflow_model):
    def custom(mlmodel):
        mlmodel["flavors"]["python_function"].update(
            loader_module="mlflow.pyfunc.model", python_model="python_model.pkl"
        )
        mlmodel["flavors"]["cloudpickle"] = {}

    assert mlmodel_findings(tmp_path, tiny_mlflow_model, custom) == [
        "flavor 'cloudpickle': only python_function and transformers load without custom code",
        "python_function loader_module is 'mlflow.pyfunc.model', not mlflow.transformers",
    ]


def test_an_mlmodel_that_is_not_one_is_a_finding(tmp_path):
    (tmp_path / "MLmodel").write_text("- just\n- a list\n")
    assert [f.message for f in check_mlmodel("MLmodel", tmp_path / "MLmodel")] == ["not an MLmodel file with flavors"]


def test_a_config_too_large_to_read_is_a_finding_not_a_skip(tmp_path, monkeypatch):
    monkeypatch.setattr("distilgpt2_asset.model_scan.custom_code.MAX_JSON", 64)
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "auto_map": {"AutoModel": "x.Y"}, "pad": "x" * 100})
    )
    [finding] = check_json_configs({"config.json": tmp_path / "config.json"})
    assert (finding.rule, finding.severity.name) == ("custom-code", "MEDIUM")
    assert "too large to check for custom code" in finding.message

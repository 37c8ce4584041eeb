"""validate: Azure's asset-CI rules, each broken on its own and reported by name."""

import copy
import shutil
import subprocess
import sys

from pathlib import Path

import pytest

from distilgpt2_asset.spec import AssetSpec
from distilgpt2_asset.validate import validate_asset, validate_spec, validate_yaml_file


def broken(spec, change):
    data = copy.deepcopy(spec.data)
    change(data)
    return AssetSpec(data, spec.path)


def _rules(problems):
    return {p.rule for p in problems}


def test_the_asset_as_committed_is_valid(asset_spec):
    assert validate_asset(asset_spec) == []


def _drop_last_recommended(data):
    skus = data["properties"]["inference-recommended-sku"].split(", ")
    data["properties"]["inference-recommended-sku"] = ", ".join(skus[:-1])


def _add_unsupported_inference_sku(data):
    data["tags"]["inference_compute_allow_list"].append("Standard_NV12s_v3")
    data["properties"]["inference-recommended-sku"] += ", Standard_NV12s_v3"


BREAKAGES = {
    "name": lambda d: d.update(name="1 bad name"),
    "version": lambda d: d.update(version="fifteen"),
    "required-tag": lambda d: d["tags"].pop("license"),
    "sha": lambda d: d["properties"].update(SHA="main"),
    "shared-compute": lambda d: d["properties"].pop("SharedComputeCapacityEnabled"),
    "model-specific-defaults": lambda d: d["tags"].update(model_specific_defaults="{apply_lora: "),
    "min-sku-spec": lambda d: d["properties"].update({"inference-min-sku-spec": "4|0|8|28"}),
    "recommended-sku": _drop_last_recommended,
    "sku-catalog": lambda d: d["tags"]["evaluation_compute_allow_list"].append("Standard_Imaginary_v9"),
    "allow-list-duplicates": lambda d: d["tags"]["finetune_compute_allow_list"].append("Standard_NC6s_v3"),
    "inference-sku-supported": _add_unsupported_inference_sku,
    "finetuning-tasks": lambda d: d["properties"].pop("finetuning-tasks"),
}


@pytest.mark.parametrize("rule", sorted(BREAKAGES))
def test_each_broken_rule_is_reported_by_name(asset_spec, rule):
    problems = validate_spec(broken(asset_spec, BREAKAGES[rule]))
    assert rule in _rules(problems), [str(p) for p in problems]


def test_min_sku_spec_names_the_expected_per_field_minimum(asset_spec):
    problems = validate_spec(broken(asset_spec, BREAKAGES["min-sku-spec"]))
    assert any("per-field minimum over the allow-list is 2|0|8|28" in p.message for p in problems)


def test_a_malformed_min_sku_spec_is_reported(asset_spec):
    spec = broken(asset_spec, lambda d: d["properties"].update({"finetune-min-sku-spec": "4|1|28"}))
    assert "min-sku-spec" in _rules(validate_spec(spec))


def test_every_problem_is_listed_not_just_the_first(asset_spec):
    def many(d):
        BREAKAGES["sha"](d)
        BREAKAGES["finetuning-tasks"](d)
        BREAKAGES["name"](d)

    assert {"sha", "finetuning-tasks", "name"} <= _rules(validate_spec(broken(asset_spec, many)))


REPO_ROOT = Path(__file__).resolve().parent.parent

DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
endpoint_name: distilgpt2-ep
model: azureml:distilgpt2:15
instance_type: {sku}
instance_count: 1
"""


def test_a_deployment_outside_the_inference_allow_list_is_reported(asset_spec, tmp_path):
    path = tmp_path / "deployment.yml"
    path.write_text(DEPLOYMENT.format(sku="Standard_DS2_v2"))
    problems = validate_yaml_file(path, asset_spec)
    assert [p.rule for p in problems] == ["allow-list"]
    assert "Standard_DS2_v2 is not in inference_compute_allow_list" in problems[0].message


def test_a_deployment_inside_the_allow_list_passes(asset_spec, tmp_path):
    path = tmp_path / "deployment.yml"
    path.write_text(DEPLOYMENT.format(sku="Standard_F8s_v2"))
    assert validate_yaml_file(path, asset_spec) == []


def test_yaml_that_the_azure_loader_rejects_is_reported(asset_spec, tmp_path):
    path = tmp_path / "deployment.yml"
    path.write_text(DEPLOYMENT.format(sku="Standard_F8s_v2") + "not_a_field: 1\n")
    assert [p.rule for p in validate_yaml_file(path, asset_spec)] == ["azure-loader"]


def test_yaml_without_an_azure_schema_is_not_an_entity(asset_spec, tmp_path):
    path = tmp_path / "conda.yaml"
    path.write_text("dependencies: [python=3.11]\n")
    assert validate_yaml_file(path, asset_spec) == []


@pytest.fixture
def asset_copy(tmp_path):
    """spec.yaml with its companion files, to break through the CLI."""
    root = tmp_path / "asset"
    root.mkdir()
    for name in ("spec.yaml", "asset.yaml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "model", root / "model")
    return root


def _validate_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "distilgpt2_asset.cli", "validate", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_passes_on_the_repo():
    result = _validate_cli()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": valid")


def test_cli_lists_problems_and_exits_non_zero(asset_copy):
    spec = asset_copy / "spec.yaml"
    spec.write_text(spec.read_text().replace("finetune-min-sku-spec: 4|1|28|64", "finetune-min-sku-spec: 4|1|28|176"))
    result = _validate_cli("--spec", str(spec))
    assert result.returncode == 1
    assert "[min-sku-spec] finetune-min-sku-spec is 4|1|28|176" in result.stdout
    assert "Traceback" not in result.stderr

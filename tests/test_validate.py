"""validate: Azure's asset-CI rules, each broken on its own and reported by name."""

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from distilgpt2_asset.spec import AssetSpec
from distilgpt2_asset.validate import lifecycle_warnings, validate_asset, validate_spec, validate_yaml_file


def broken(spec, change):
    data = copy.deepcopy(spec.data)
    change(data)
    return AssetSpec(data, spec.path)


def _rules(problems):
    return {p.rule for p in problems}


def test_the_asset_as_committed_is_valid(asset_spec):
    assert validate_asset(asset_spec) == []


def _sku(data):
    return data["system_metadata"]["SKU"]


def _computes(data, scenario):
    return data["system_metadata"]["supportedComputes"][f"{scenario}Computes"]


def _add_unsupported_inference_sku(data):
    _computes(data, "inference").append("Standard_NV12s_v3")
    _sku(data)["inferenceRecommendedSkus"].append("Standard_NV12s_v3")


BREAKAGES = {
    "name": lambda d: d.update(name="1 bad name"),
    "version": lambda d: d.update(version="fifteen"),
    "required-tag": lambda d: d["system_metadata"].pop("license"),
    "sha": lambda d: d["properties"].update(SHA="main"),
    "shared-compute": lambda d: d["system_metadata"].pop("sharedComputeCapacityEnabled"),
    "model-specific-defaults": lambda d: d["tags"].update(model_specific_defaults="{apply_lora: "),
    "min-sku-spec": lambda d: _sku(d).update(inferenceMinSkuSpec="4|0|8|28"),
    "recommended-sku": lambda d: _sku(d)["inferenceRecommendedSkus"].pop(),
    "sku-catalog": lambda d: _computes(d, "evaluation").append("Standard_Imaginary_v9"),
    "allow-list-duplicates": lambda d: _computes(d, "finetune").append("Standard_NC6s_v3"),
    "inference-sku-supported": _add_unsupported_inference_sku,
    "finetuning-tasks": lambda d: d["system_metadata"]["tasks"].pop("fineTuningTasks"),
}


@pytest.mark.parametrize("rule", sorted(BREAKAGES))
def test_each_broken_rule_is_reported_by_name(asset_spec, rule):
    problems = validate_spec(broken(asset_spec, BREAKAGES[rule]))
    assert rule in _rules(problems), [str(p) for p in problems]


def test_min_sku_spec_names_the_expected_per_field_minimum(asset_spec):
    problems = validate_spec(broken(asset_spec, BREAKAGES["min-sku-spec"]))
    assert any("per-field minimum over the allow-list is 2|0|8|28" in p.message for p in problems)


def test_a_malformed_min_sku_spec_is_reported(asset_spec):
    spec = broken(asset_spec, lambda d: _sku(d).update(finetuneMinSkuSpec="4|1|28"))
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
    assert "Standard_DS2_v2 is not in spec.yaml's inference_compute_allow_list" in problems[0].message


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
    spec.write_text(spec.read_text().replace("finetuneMinSkuSpec: 4|1|28|64", "finetuneMinSkuSpec: 4|1|28|176"))
    result = _validate_cli("--spec", str(spec))
    assert result.returncode == 1
    assert "[min-sku-spec] finetune-min-sku-spec is 4|1|28|176" in result.stdout
    assert "Traceback" not in result.stderr


# azure.ai.ml's own pre-submit validation, and the SKUs' lifecycle --------------------------------

EVALUATION_JOB = REPO_ROOT / "jobs" / "evaluate-model-text-generation.yml"


def _job_copy(tmp_path, change) -> Path:
    """The evaluation pipeline with a change, beside a copy of the folder its paths point into."""
    shutil.copytree(REPO_ROOT / "jobs" / "evaluation", tmp_path / "evaluation")
    data = yaml.safe_load(EVALUATION_JOB.read_text())
    change(data)
    path = tmp_path / EVALUATION_JOB.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_job_the_sdk_would_refuse_is_reported_with_its_file_and_yaml_path(asset_spec, tmp_path):
    path = _job_copy(tmp_path, lambda d: d.pop("settings"))
    problems = validate_yaml_file(path, asset_spec)
    assert [str(p) for p in problems] == [f"[azure-presubmit] {path}: jobs.prepare_data.compute: Compute not set"]


def test_a_deployment_the_sdk_would_refuse_is_reported_with_its_yaml_path(asset_spec, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "score.py").write_text("def init(:\n")
    path = tmp_path / "deployment.yml"
    path.write_text(
        DEPLOYMENT.format(sku="Standard_F8s_v2") + "code_configuration:\n  code: code\n  scoring_script: score.py\n"
    )
    [problem] = validate_yaml_file(path, asset_spec)
    assert problem.rule == "azure-presubmit"
    assert problem.message.startswith(f"{path}: code_configuration.scoring_script: Failed to submit deployment blue")


def test_a_retired_sku_in_a_job_is_refused_with_its_date_and_the_nearest_live_sku(asset_spec, tmp_path):
    path = _job_copy(tmp_path, lambda d: d["jobs"]["evaluate"]["inputs"].update(instance_type="Standard_NC12s_v3"))
    [problem] = validate_yaml_file(path, asset_spec)
    assert problem.rule == "sku-lifecycle"
    assert problem.message == (
        f"{path}: Standard_NC12s_v3 was retired on 2025-09-30; "
        "the nearest live SKU of the evaluation allow-list is Standard_NC48ads_A100_v4"
    )


def test_an_announced_retirement_in_a_job_is_a_warning_not_a_problem(asset_spec):
    warnings = []
    assert validate_yaml_file(EVALUATION_JOB, asset_spec, warnings) == []
    assert [str(w) for w in warnings] == [
        f"[sku-lifecycle] {EVALUATION_JOB}: Standard_DS4_v2: retirement announced for 2028-05-01"
    ]


def test_retired_skus_the_card_lists_are_warnings_and_the_lists_stay_as_published(asset_spec):
    warnings = lifecycle_warnings(asset_spec)
    assert validate_spec(asset_spec) == []
    retired = [w.message for w in warnings if "was retired" in w.message]
    assert (
        "finetune_compute_allow_list: Standard_NV12s_v3 was retired on 2026-09-30 (kept as the card lists it; never "
        "picked)" in retired
    )
    assert sum("Standard_NC6s_v3 was retired on 2025-09-30" in m for m in retired) == 3  # in all three lists
    assert "Standard_NV12s_v3" in asset_spec.allow_list("finetune")


def test_cli_lists_warnings_and_still_passes():
    result = _validate_cli()
    assert result.returncode == 0
    assert (
        "warning: [sku-lifecycle] finetune_compute_allow_list: Standard_NC24rs_v3 was retired on 2025-09-30"
        in result.stdout
    )


def test_a_batch_cluster_beside_the_deployments_is_held_to_the_inference_allow_list(asset_spec, tmp_path):
    cluster = (asset_spec.path.parent / "jobs" / "deploy" / "batch-cluster.yml").read_text()
    path = tmp_path / "deploy" / "batch-cluster.yml"
    path.parent.mkdir()
    path.write_text(cluster.replace("size: Standard_DS3_v2", "size: Standard_DS2_v2"))
    [problem] = validate_yaml_file(path, asset_spec)
    assert (problem.rule, problem.message) == (
        "allow-list",
        f"{path}: Standard_DS2_v2 is not in spec.yaml's inference_compute_allow_list",
    )


def test_a_batch_deployment_loads_with_the_public_loader_and_the_sdks_output_rule_applies(asset_spec, tmp_path):
    deploy = asset_spec.path.parent / "jobs" / "deploy"
    data = yaml.safe_load((deploy / "batch-deployment.yml").read_text())
    data["code_configuration"]["code"] = str(asset_spec.path.parent / "scoring")
    data["environment"]["conda_file"] = str(asset_spec.path.parent / "environments" / "batch" / "conda.yml")
    data["output_action"] = "summary_only"  # with output_file_name still set: the SDK refuses it
    path = tmp_path / "batch-deployment.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    [problem] = validate_yaml_file(path, asset_spec)
    assert problem.rule == "azure-presubmit" and problem.message.startswith(
        f"{path}: output_action: When output_action is set to summary_only"
    )

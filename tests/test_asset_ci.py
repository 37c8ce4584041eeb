"""Microsoft's asset CI (azureml-assets, azureml-registry-tools) as libraries, on the asset's release set."""

from pathlib import Path

from azureml.assets import AssetConfig

from distilgpt2_asset.asset_ci import asset_ci_problems, release_paths
from distilgpt2_asset.spec import load_spec
from distilgpt2_asset.validate import validate_asset

REPO_ROOT = Path(__file__).resolve().parent.parent
RELEASE_SET = [Path("asset.yaml"), Path("model/description.md"), Path("model/model.yaml"), Path("spec.yaml")]


def _plant(root: Path, old: str, new: str, file: str = "spec.yaml") -> None:
    path = root / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_asset_passes_microsofts_validators():
    assert asset_ci_problems(REPO_ROOT) == []


def test_the_release_set_is_the_assets_own_files():
    assert release_paths(REPO_ROOT) == RELEASE_SET
    released = {p.resolve() for p in AssetConfig(REPO_ROOT / "asset.yaml").release_paths}
    assert released == {(REPO_ROOT / p).resolve() for p in RELEASE_SET}


def test_a_local_build_does_not_change_the_release_set(asset_copy):
    before = release_paths(asset_copy)
    build = asset_copy / "outputs" / "mlflow_model_folder"  # where model.yaml says the build goes
    build.mkdir(parents=True)
    (build / "model.safetensors").write_bytes(b"\0" * (2 * 1024 * 1024))
    (asset_copy / ".git").mkdir()
    assert release_paths(asset_copy) == before
    assert asset_ci_problems(asset_copy) == []  # validate_tree's 1 MB rule sees only the release set


def test_a_quoted_model_specific_defaults_is_a_schema_error(asset_copy):
    _plant(
        asset_copy,
        'model_specific_defaults: {apply_deepspeed: "true", apply_lora: "true", apply_ort: "true"}',
        "model_specific_defaults: \"{'apply_deepspeed': 'true'}\"",
    )
    assert asset_ci_problems(asset_copy) == [
        (
            "asset-schema",
            f"{asset_copy / 'spec.yaml'} is invalid at path 'tags.model_specific_defaults': "
            "\"{'apply_deepspeed': 'true'}\" is not of type 'object'",
        )
    ]


def test_a_tag_from_before_the_migration_is_refused(asset_copy):
    _plant(asset_copy, "tags:\n", "tags:\n  task: text-generation\n")
    [(rule, message)] = asset_ci_problems(asset_copy)
    assert rule == "asset-schema"
    assert "'tags.task' must be migrated to 'system_metadata.tasks.inferenceTasks'" in message


def test_an_asset_name_against_microsofts_naming_rules_is_refused(asset_copy):
    _plant(asset_copy, "name: distilgpt2\n", "name: distilgpt2-aml\n")  # our own name pattern allows it
    assert asset_ci_problems(asset_copy) == [
        (
            "asset-ci",
            f"Validation of {asset_copy / 'asset.yaml'} failed: Name 'distilgpt2-aml' contains invalid string 'aml'",
        )
    ]


def test_a_file_over_one_megabyte_in_the_release_set_is_refused(asset_copy):
    card = asset_copy / "model" / "description.md"
    card.write_text(card.read_text() + "x" * (1024 * 1024))
    assert ("asset-tree", f"{card} is too large (over 1MB)") in asset_ci_problems(asset_copy)


def test_a_release_set_reaching_outside_the_asset_is_refused(asset_copy):
    _plant(asset_copy, "description_file: model/description.md", "description_file: ../elsewhere.md", "asset.yaml")
    (asset_copy.parent / "elsewhere.md").write_text("card")
    [(rule, message)] = asset_ci_problems(asset_copy)
    assert rule == "asset-release-set" and "reaches outside the asset" in message


def test_validate_reports_microsofts_findings_beside_its_own(asset_copy):
    _plant(asset_copy, "tags:\n", "tags:\n  license: apache-2.0\n")
    problems = validate_asset(load_spec(asset_copy / "spec.yaml"))
    assert [p.rule for p in problems] == ["asset-schema"]
    assert "'tags.license' must be migrated to 'system_metadata.license'" in problems[0].message


def test_ci_runs_validate_after_installing():
    lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    install = lines.index("bash scripts/install.sh test")
    assert lines.index(".venv/bin/distilgpt2-asset validate") > install

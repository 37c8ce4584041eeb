"""`publish` to the local MLflow registry: validated, versioned by spec.yaml, idempotent, atomic."""

from __future__ import annotations

import json
import subprocess

import pytest
from publish_helpers import REPO_ROOT, changed_copy, edit_spec, make_asset_root, publish

from distilgpt2_asset.publish import COMMIT_PROPERTY, MANIFEST_PROPERTY, UNKNOWN_COMMIT, git_commit
from distilgpt2_asset.registry import CONTENT_TAG, LocalRegistry, content_digest

TESTING = "--allow-unpinned"  # the tiny model is built from a local folder, not the pinned hub revision


@pytest.fixture
def asset_root(tmp_path, monkeypatch, isolated_home):
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    root = make_asset_root(tmp_path / "asset")
    monkeypatch.setenv("DISTILGPT2_ASSET_ROOT", str(root))
    return root


def versions(name="distilgpt2"):
    return LocalRegistry().client.search_model_versions(f"name = '{name}'")


def version_tags(asset_version="15"):
    return LocalRegistry().find("distilgpt2", asset_version).tags


def test_first_publish_creates_the_version_with_spec_tags_properties_manifest_and_commit(
    asset_root, asset_spec, tiny_mlflow_model, capsys
):
    code, out, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert code == 0
    assert out.startswith("created: distilgpt2 15 as models:/distilgpt2/1 in sqlite:///")
    tags = version_tags()
    assert {k: tags[k] for k in asset_spec.string_tags()} == asset_spec.string_tags()
    assert {k: tags["properties/" + k] for k in asset_spec.string_properties()} == asset_spec.string_properties()
    assert tags[CONTENT_TAG] == content_digest(tiny_mlflow_model)
    manifest = json.loads((tiny_mlflow_model / "sha256-manifest.json").read_text())["files"]
    assert json.loads(tags["properties/" + MANIFEST_PROPERTY]) == manifest
    assert tags["properties/" + COMMIT_PROPERTY] == UNKNOWN_COMMIT  # the copied checkout is not a git repo


def test_publishing_the_same_content_again_changes_nothing(asset_root, tiny_mlflow_model, capsys):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    before = version_tags()
    code, out, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert (code, out.split(":")[0]) == (0, "unchanged")
    assert version_tags() == before and len(versions()) == 1


def test_changed_tags_update_the_metadata_only(asset_root, tiny_mlflow_model, capsys):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)

    def retag(spec):
        spec["system_metadata"]["datasets"] = ["openwebtext", "wikitext"]
        del spec["system_metadata"]["hiddenLayerScanned"]

    edit_spec(asset_root, retag)
    code, out, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert code == 0
    assert out.startswith("metadata-updated: distilgpt2 15 as models:/distilgpt2/1")
    assert "tag datasets" in out and "tag hiddenlayerscanned" in out
    tags = version_tags()
    assert tags["datasets"] == "openwebtext, wikitext" and "hiddenlayerscanned" not in tags
    assert len(versions()) == 1


def test_a_changed_property_under_a_published_version_is_refused(asset_root, tiny_mlflow_model, capsys):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    edit_spec(asset_root, lambda spec: spec["system_metadata"].update(languages=["en", "fr"]))
    code, out, err = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert code == 2 and out == ""
    assert "languages 'en' -> 'en, fr'" in err and "bump `version` in spec.yaml" in err
    assert version_tags()["properties/languages"] == "en"


def test_different_content_under_a_published_version_is_refused(asset_root, tiny_mlflow_model, tmp_path, capsys):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    other = changed_copy(tiny_mlflow_model, tmp_path / "other")
    code, _, err = publish(capsys, "--model", str(other), TESTING)
    assert code == 2
    assert err.startswith("error: ") and "different content" in err and "bump `version` in spec.yaml" in err
    assert len(versions()) == 1 and version_tags()[CONTENT_TAG] == content_digest(tiny_mlflow_model)


def test_a_bumped_version_is_published_alongside(asset_root, tiny_mlflow_model, tmp_path, capsys):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    edit_spec(asset_root, lambda spec: spec.update(version=16))
    other = changed_copy(tiny_mlflow_model, tmp_path / "other")
    code, out, _ = publish(capsys, "--model", str(other), TESTING, "--version", "v16")
    assert code == 0 and out.startswith("created: distilgpt2 16 as models:/distilgpt2/2")
    assert version_tags("16")[CONTENT_TAG] == content_digest(other)
    assert version_tags("15")[CONTENT_TAG] == content_digest(tiny_mlflow_model)


def test_an_invalid_asset_is_refused_listing_every_problem(asset_root, tiny_mlflow_model, capsys):
    def break_spec(spec):
        del spec["system_metadata"]["license"]
        spec["system_metadata"]["SKU"]["inferenceMinSkuSpec"] = "4|0|8|28"

    edit_spec(asset_root, break_spec)
    code, out, err = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert code == 2 and out == ""
    assert "3 problem(s); refusing to publish" in err
    assert "[asset-ci] Validation of " in err and "license missing" in err  # Microsoft's validate_assets agrees
    assert (
        "[required-tag] system_metadata.license (the card's tag 'license') is missing" in err
        and "[min-sku-spec]" in err
    )
    assert not LocalRegistry().find("distilgpt2", "15")


@pytest.mark.parametrize("asked", ["16", "v16", "latest", ""])
def test_an_unknown_version_is_one_line_and_a_non_zero_exit(asset_root, tiny_mlflow_model, capsys, asked):
    code, out, err = publish(capsys, "--model", str(tiny_mlflow_model), TESTING, "--version", asked)
    assert code == 2 and out == ""
    assert err.startswith(f"error: unknown version {asked!r}") and err.count("\n") == 1


def test_the_version_from_a_git_tag_is_accepted(asset_root, tiny_mlflow_model, capsys):
    code, out, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING, "--version", "v15")
    assert code == 0 and out.startswith("created: distilgpt2 15")


def test_a_model_not_built_from_the_pinned_revision_needs_allow_unpinned(
    asset_root, tiny_mlflow_model, pinned_mlflow_model, capsys
):
    code, _, err = publish(capsys, "--model", str(tiny_mlflow_model))
    assert code == 2 and "not spec.yaml's distilgpt2@38cc92ec" in err and "--allow-unpinned" in err
    code, out, _ = publish(capsys, "--model", str(pinned_mlflow_model))
    assert code == 0 and out.startswith("created:")


def test_a_testing_build_left_in_the_default_folder_is_not_published(
    asset_root, isolated_home, tiny_model_dir, tiny_mlflow_model, capsys
):
    import shutil

    shutil.copytree(tiny_mlflow_model, isolated_home / "models" / "distilgpt2-15")
    code, out, err = publish(capsys)
    assert code == 2 and out == ""
    assert f"is a build of the local folder {tiny_model_dir}, not spec.yaml's distilgpt2@38cc92ec" in err
    assert not versions()


def test_a_tampered_model_is_refused_naming_the_file(asset_root, tiny_mlflow_model, tmp_path, capsys):
    import shutil

    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_mlflow_model, tampered)
    (tampered / "MLmodel").write_text((tampered / "MLmodel").read_text() + "# edited\n")
    code, _, err = publish(capsys, "--model", str(tampered), TESTING)
    assert (
        code == 2 and "MLmodel [manifest] sha256" in err and "does not match the manifest" in err
    )  # the scan runs first
    assert not versions()


def test_an_interrupted_publish_leaves_no_version_and_no_files(
    asset_root, isolated_home, tiny_mlflow_model, monkeypatch, capsys
):
    from mlflow.tracking import MlflowClient

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "create_model_version", interrupted)
        code, _, err = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert code == 130 and "interrupted" in err
    assert not versions()
    assert not any((isolated_home / "registry-artifacts" / "distilgpt2").iterdir())


def test_dry_run_prints_the_local_payload_and_touches_no_registry(
    asset_root, asset_spec, isolated_home, tiny_mlflow_model, capsys
):
    code, out, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING, "--dry-run")
    assert code == 0
    payload = json.loads(out)
    assert payload["registry"] == f"sqlite:///{isolated_home / 'registry.db'}"
    assert (payload["name"], payload["version"], payload["type"]) == ("distilgpt2", "15", "mlflow_model")
    assert payload["tags"] == asset_spec.string_tags()
    assert not (isolated_home / "registry.db").exists()


def test_dry_run_without_a_built_model_says_how_to_make_one(asset_root, isolated_home, capsys):
    code, out, err = publish(capsys, "--dry-run")
    assert code == 2 and out == ""
    assert (
        err
        == f"error: no built model at {isolated_home / 'models' / 'distilgpt2-15'}: run `distilgpt2-asset build` or "
        "pass --model DIR\n"
    )


def test_the_git_commit_is_the_checkouts_head():
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert git_commit(REPO_ROOT) == head.stdout.strip()


def test_outside_git_the_commit_comes_from_ci_or_is_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    assert git_commit(tmp_path) == UNKNOWN_COMMIT
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    assert git_commit(tmp_path) == "a" * 40


def test_publish_records_a_clean_scan_of_the_published_content(asset_root, tiny_mlflow_model, capsys):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    tags = version_tags()
    assert tags["properties/model_scan_verdict"] == "clean"
    assert tags["properties/model_scan_sha256"] == content_digest(tiny_mlflow_model)
    assert json.loads(tags["properties/model_scan_tools"]).keys() == {"modelscan", "distilgpt2-asset-rules"}


def test_a_rescan_with_newer_rules_keeps_the_published_scan_evidence(
    asset_root, tiny_mlflow_model, monkeypatch, capsys
):
    publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    before = version_tags()
    monkeypatch.setattr("distilgpt2_asset.model_scan.scanner.RULES_VERSION", "newer")
    code, out, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert (code, out.split(":")[0]) == (0, "unchanged")
    assert version_tags() == before


def test_expect_digest_publishes_only_the_build_with_that_digest(asset_root, tiny_mlflow_model, tmp_path, capsys):
    other = changed_copy(tiny_mlflow_model, tmp_path / "other")
    code, out, err = publish(
        capsys, "--model", str(other), TESTING, "--expect-digest", content_digest(tiny_mlflow_model)
    )
    assert code == 2 and out == ""
    assert f"has content sha256 {content_digest(other)}, not the expected '{content_digest(tiny_mlflow_model)}'" in err
    code, _, err = publish(capsys, "--model", str(other), TESTING, "--expect-digest", "")
    assert code == 2 and "not the expected ''" in err
    assert not versions()
    code, out, _ = publish(
        capsys, "--model", str(tiny_mlflow_model), TESTING, "--expect-digest", content_digest(tiny_mlflow_model)
    )
    assert code == 0 and out.startswith("created:")


def test_a_publish_reads_the_model_twice_and_its_registry_copy_once(asset_root, tiny_mlflow_model, monkeypatch, capsys):
    """The scan and the opened model travel with the payload: the model is scanned once and hashed once
    (each reads every file), and the registry's own copy is checked once, being other files."""
    import distilgpt2_asset.model_scan.scanner as scanner
    import distilgpt2_scoring.model_files as model_files

    read: list[str] = []
    hashed = model_files.sha256_file

    def counted(path):
        read.append(str(path))
        return hashed(path)

    monkeypatch.setattr(model_files, "sha256_file", counted)
    monkeypatch.setattr(scanner, "sha256_file", counted)
    code, _, _ = publish(capsys, "--model", str(tiny_mlflow_model), TESTING)
    assert code == 0
    weights = [path for path in read if path.endswith("model.safetensors")]
    assert len([path for path in weights if path.startswith(str(tiny_mlflow_model))]) == 2
    assert len(weights) == 3

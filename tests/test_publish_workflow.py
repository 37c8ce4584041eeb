""".github/workflows/publish.yml, least privilege: the job that can get an Azure token builds and tests
nothing and publishes only the build the build job verified; actions pinned by commit SHA; one
concurrency group for every publish."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name
from publish_helpers import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "publish.yml"
# What runs the project's or its dependencies' code beyond the publish command itself.
BUILDS_OR_TESTS = ("scripts/test.sh", "scripts/ci-publish.sh", "distilgpt2-asset build", "pytest")
PINNED = re.compile(r"uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def steps_run(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def uses(step: dict, action: str) -> bool:
    return step.get("uses", "").split("@")[0].lower() == action


def can_get_azure_token(job: dict) -> bool:
    return (job.get("permissions") or {}).get("id-token") == "write"


def signing_job(workflow: dict) -> tuple[str, dict]:
    (found,) = [
        (name, job) for name, job in workflow["jobs"].items() if any(uses(s, "azure/login") for s in job["steps"])
    ]
    return found


def build_job(workflow: dict) -> tuple[str, dict]:
    (found,) = [(name, job) for name, job in workflow["jobs"].items() if "distilgpt2-asset build" in steps_run(job)]
    return found


def test_only_the_job_that_signs_in_to_azure_can_get_a_token(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    name, _ = signing_job(workflow)
    assert [job for job, spec in workflow["jobs"].items() if can_get_azure_token(spec)] == [name]


def test_building_and_testing_happen_in_a_job_without_id_token_write(workflow):
    _, build = build_job(workflow)
    assert not can_get_azure_token(build) and build["permissions"] == {"contents": "read"}
    assert "scripts/test.sh" in steps_run(build)
    for name, job in workflow["jobs"].items():
        if can_get_azure_token(job):
            assert not [what for what in BUILDS_OR_TESTS if what in steps_run(job)], f"{name} builds or tests"


def test_the_signing_job_publishes_only_the_build_the_build_job_verified(workflow):
    build_name, build = build_job(workflow)
    _, signer = signing_job(workflow)
    assert build_name in ([signer["needs"]] if isinstance(signer["needs"], str) else signer["needs"])
    # The build job verifies its build (dry run: pinned source, manifest), records the digest and uploads it.
    verify = next(step for step in build["steps"] if "--dry-run" in step.get("run", "") and "$MODEL_DIR" in step["run"])
    assert build["outputs"]["digest"] == f"${{{{ steps.{verify['id']}.outputs.digest }}}}"
    upload = next(step for step in build["steps"] if uses(step, "actions/upload-artifact"))
    download = next(step for step in signer["steps"] if uses(step, "actions/download-artifact"))
    assert download["with"]["name"] == upload["with"]["name"] and download["with"]["path"] == upload["with"]["path"]
    # The signing job refuses any other content: every publish there names the recorded digest.
    assert signer["env"]["BUILT_DIGEST"] == f"${{{{ needs.{build_name}.outputs.digest }}}}"
    publishes = [i for i, step in enumerate(signer["steps"]) if "distilgpt2-asset publish" in step.get("run", "")]
    assert publishes and all('--expect-digest "$BUILT_DIGEST"' in signer["steps"][i]["run"] for i in publishes)
    login = next(i for i, step in enumerate(signer["steps"]) if uses(step, "azure/login"))
    assert publishes[0] < login, "the digest is checked before signing in"
    assert not [step for step in signer["steps"] if "continue-on-error" in step or "if" in step]


def test_every_action_is_pinned_by_full_commit_sha_with_its_tag_in_a_comment(workflow):
    lines = [line.strip() for line in WORKFLOW.read_text().splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert lines and [line for line in lines if not PINNED.search(line)] == []
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert len(lines) == len([step for step in steps if "uses" in step])


def test_every_publish_shares_one_concurrency_group_whatever_the_ref(workflow):
    _, signer = signing_job(workflow)
    group = signer["concurrency"]["group"]
    assert group and "${{" not in group, "a fixed name: no ref, event or run in it"
    assert signer["concurrency"]["cancel-in-progress"] is False


PUBLISH_REQUIREMENTS = REPO_ROOT / ".github" / "requirements" / "publish.txt"
DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"
INDEX_OPTIONS = ("index-url", "INDEX_URL", "--find-links", "PIP_FIND_LINKS")


def publish_requirements() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) of each requirement in .github/requirements/publish.txt."""
    text = PUBLISH_REQUIREMENTS.read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            pin, *options = line.split()
            name, version = pin.split("==")
            found[canonicalize_name(name)] = (version, [o.removeprefix("--hash=sha256:") for o in options])
    return found


def test_the_signing_job_installs_only_hash_locked_wheels_from_one_index(workflow):
    """The attack: with id-token: write, pip upgraded itself unpinned and installed the whole unhashed tree,
    from a second index, running an sdist's setup.py."""
    _, signer = signing_job(workflow)
    installs = [line for line in steps_run(signer).splitlines() if "pip install" in line]
    assert installs == [
        ".venv/bin/python -m pip install --quiet --require-hashes --no-deps --only-binary=:all: "
        "-r .github/requirements/publish.txt",
        ".venv/bin/python -m pip install --quiet --no-deps --no-build-isolation --no-index -e .",
    ]
    for where in (workflow.get("env", {}), signer.get("env", {}), steps_run(signer)):
        assert not [option for option in INDEX_OPTIONS if option in str(where)]
    requirements = publish_requirements()
    assert requirements and all(
        len(hashes) == 1 and re.fullmatch(r"[0-9a-f]{64}", hashes[0]) for _, hashes in requirements.values()
    )


def test_the_publish_requirements_agree_with_pyproject():
    pinned = {
        canonicalize_name(name): version
        for name, version in (
            dependency.split(";")[0].strip().split("==")
            for dependency in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        )
    }
    requirements = publish_requirements()
    assert {name: pinned[name] for name in requirements.keys() & pinned.keys()} == {
        name: requirements[name][0] for name in requirements.keys() & pinned.keys()
    }
    assert "torch" not in requirements and "mlflow" not in requirements  # publish needs neither


@pytest.mark.slow
def test_the_publish_requirements_hold_every_package_the_publish_path_imports(tiny_mlflow_model, tmp_path):
    script = textwrap.dedent(
        """
        import atexit, importlib.metadata as metadata, json, os, sys
        from distilgpt2_asset.cli import main

        def record():
            owners = {os.path.realpath(d.locate_file(f)): d.metadata["Name"]
                      for d in metadata.distributions() for f in d.files or []}
            used = {owners.get(os.path.realpath(getattr(m, "__file__", None) or ""))
                    for m in list(sys.modules.values())}
            print(json.dumps(sorted(name for name in used if name)), file=sys.stderr)

        atexit.register(record)
        sys.exit(main(sys.argv[1:]))
        """
    )
    command = [sys.executable, "-c", script, "publish", "--model", str(tiny_mlflow_model), "--registry", "contoso"]
    command += ["--allow-unpinned", "--dry-run"]
    env = dict(os.environ, DISTILGPT2_ASSET_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    used = {canonicalize_name(name) for name in json.loads(done.stderr.strip().splitlines()[-1])}
    assert used - publish_requirements().keys() <= {"distilgpt2-asset"}


def test_tag_builds_restore_no_cache(workflow):
    """The attack: an HF snapshot and pip cache restored on tag builds, checked against nothing independent."""
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert not [step for step in steps if uses(step, "actions/cache") or "cache" in step.get("with", {})]


def test_dependabot_keeps_the_actions_shas_current():
    updates = yaml.safe_load(DEPENDABOT.read_text())["updates"]
    assert {(update["package-ecosystem"], update["directory"]) for update in updates} >= {("github-actions", "/")}


def test_zizmor_finds_nothing_in_the_workflows_at_its_default_persona():
    zizmor = Path(sys.executable).with_name("zizmor")
    done = subprocess.run(
        [str(zizmor), "--offline", "--format", "json", str(REPO_ROOT / ".github")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, json.loads(done.stdout)) == (0, []), done.stdout + done.stderr

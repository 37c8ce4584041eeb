""".github/workflows/publish.yml, least privilege: the job that can get an Azure token builds and tests
nothing and publishes only the build the build job verified; actions pinned by commit SHA; one
concurrency group for every publish."""

from __future__ import annotations

import re

import pytest
import yaml
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

"""jobs/deploy.sh: valid bash (always), shellcheck-clean (where shellcheck is installed), and the
exact az ml commands it runs, recorded by a stand-in `az` on PATH."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from azure.ai.ml import load_online_deployment

from distilgpt2_asset.deploy import model_reference

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "jobs" / "deploy.sh"
FAKE_AZ = """#!/usr/bin/env bash
{ printf '%q ' "$@"; echo; } >> "$AZ_LOG"  # one line per call, quoted for shlex
if [[ -n "${AZ_FAIL:-}" && "$*" == "$AZ_FAIL"* ]]; then exit 1; fi
"""


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)")
def test_script_passes_shellcheck():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def run_script(tmp_path, **env) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)
    log = tmp_path / "az.log"
    variables = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AZ_LOG": str(log),
        "SUBSCRIPTION_ID": "0000-sub",
        "RESOURCE_GROUP": "rg-ml",
        "WORKSPACE": "ws-ml",
        "ENDPOINT_NAME": "textgen-ci",
        **env,
    }
    result = subprocess.run(["bash", str(SCRIPT)], env=variables, capture_output=True, text=True)
    calls = [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def test_script_runs_the_documented_az_ml_commands_in_order(tmp_path, asset_spec):
    result, calls = run_script(tmp_path, INSTANCE_TYPE="Standard_F8s_v2")
    assert result.returncode == 0, result.stderr
    deploy_dir = str(SCRIPT.parent / "deploy")
    model = model_reference(asset_spec, "azureml")
    assert calls == [
        ["account", "set", "--subscription", "0000-sub"],
        ["configure", "--defaults", "group=rg-ml", "workspace=ws-ml"],
        ["ml", "model", "show", "--name", asset_spec.name, "--version", asset_spec.version, "--registry-name", "azureml", "--output", "none"],
        ["ml", "online-endpoint", "create", "--file", f"{deploy_dir}/online-endpoint.yml", "--name", "textgen-ci"],
        ["ml", "online-deployment", "create", "--file", f"{deploy_dir}/online-deployment.yml", "--all-traffic",
         "--set", "endpoint_name=textgen-ci", "name=blue", f"model={model}", "instance_type=Standard_F8s_v2"],
        ["ml", "online-endpoint", "show", "--name", "textgen-ci", "--query", "{scoring_uri: scoring_uri, traffic: traffic}"],
        ["ml", "online-endpoint", "invoke", "--name", "textgen-ci", "--deployment-name", "blue", "--request-file", f"{deploy_dir}/sample-request.json"],
        ["ml", "online-deployment", "get-logs", "--name", "blue", "--endpoint-name", "textgen-ci", "--lines", "100"],
        ["ml", "online-endpoint", "delete", "--name", "textgen-ci", "--yes", "--no-wait"],
    ]


def test_the_script_set_overrides_load_with_the_real_loader(tmp_path, asset_spec):
    _, calls = run_script(tmp_path, INSTANCE_TYPE="Standard_F8s_v2")
    create = next(c for c in calls if c[:3] == ["ml", "online-deployment", "create"])
    pairs = create[create.index("--set") + 1:]
    deployment = load_online_deployment(ROOT / create[create.index("--file") + 1], params_override=[dict([p.split("=", 1)]) for p in pairs])
    assert (deployment.endpoint_name, deployment.name, deployment.instance_type) == ("textgen-ci", "blue", "Standard_F8s_v2")
    assert deployment.model == model_reference(asset_spec, "azureml")


def test_failed_deployment_shows_logs_and_still_deletes_the_endpoint(tmp_path):
    result, calls = run_script(tmp_path, AZ_FAIL="ml online-deployment create")
    assert result.returncode == 1
    assert [c[:3] for c in calls[-2:]] == [["ml", "online-deployment", "get-logs"], ["ml", "online-endpoint", "delete"]]


def test_keep_endpoint_skips_the_delete(tmp_path):
    result, calls = run_script(tmp_path, KEEP_ENDPOINT="1")
    assert result.returncode == 0
    assert not any(c[:3] == ["ml", "online-endpoint", "delete"] for c in calls)


def test_missing_workspace_setting_stops_before_any_az_call(tmp_path):
    result, calls = run_script(tmp_path, WORKSPACE="")
    assert result.returncode != 0 and "set WORKSPACE" in result.stderr
    assert calls == []

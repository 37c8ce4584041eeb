"""jobs/deploy.sh (online and batch): valid bash (always), shellcheck-clean (where shellcheck is
installed), and the exact az ml commands it runs, recorded by a stand-in `az` on PATH; its checks are
the real `distilgpt2-asset deploy [--batch] --dry-run`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from azure.ai.ml import load_online_deployment

from distilgpt2_asset.azure_ml.deploy import model_reference

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "jobs" / "deploy.sh"
# A stand-in `az` that keeps endpoints and clusters as files (created, shown, deleted), starts batch jobs
# by name, and logs every call.
FAKE_AZ = """#!/usr/bin/env bash
{ printf '%q ' "$@"; echo; } >> "$AZ_LOG"  # one line per call, quoted for shlex
name=""
for ((i = 1; i <= $#; i++)); do [[ "${!i}" == "--name" ]] && { j=$((i + 1)); name="${!j}"; }; done
[[ "$2" == compute ]] && name="compute-$name"
case "$*" in
  "ml online-endpoint create"* | "ml batch-endpoint create"* | "ml compute create"*) touch "$AZ_STATE/$name" ;;
  "ml online-endpoint show"* | "ml batch-endpoint show"* | "ml compute show"*)
    [[ -e "$AZ_STATE/$name" ]] || { echo "ResourceNotFound: $name" >&2; exit 1; } ;;
  "ml online-endpoint delete"* | "ml batch-endpoint delete"* | "ml compute delete"*) rm -f "$AZ_STATE/$name" ;;
  "ml batch-endpoint invoke"*) echo "batchjob-1" ;;
esac
if [[ -n "${AZ_SIGNAL:-}" && "$*" == "$AZ_SIGNAL"* ]]; then kill -TERM "$PPID"; sleep 1; fi
if [[ -n "${AZ_FAIL:-}" && "$*" == "$AZ_FAIL"* ]]; then exit 1; fi
"""
CHECKER = f"""#!/usr/bin/env bash
exec {sys.executable} -m distilgpt2_asset.cli "$@"
"""


def test_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)"
)
def test_script_passes_shellcheck():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def run_script(
    tmp_path, existing: tuple[str, ...] = (), mode: tuple[str, ...] = (), **env
) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """Run jobs/deploy.sh with the stand-in az and the real `distilgpt2-asset` on PATH (nothing else)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "endpoints"
    bin_dir.mkdir()
    state.mkdir()
    for endpoint in existing:
        (state / endpoint).touch()
    for name, text in (("az", FAKE_AZ), ("distilgpt2-asset", CHECKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "az.log"
    variables = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HF_HUB_OFFLINE": "1",
        "DISTILGPT2_ASSET_HOME": str(tmp_path / "home"),
        "AZ_LOG": str(log),
        "AZ_STATE": str(state),
        "SUBSCRIPTION_ID": "0000-sub",
        "RESOURCE_GROUP": "rg-ml",
        "WORKSPACE": "ws-ml",
        "ENDPOINT_NAME": "textgen-ci",
        **env,
    }
    result = subprocess.run(["bash", str(SCRIPT), *mode], env=variables, capture_output=True, text=True, timeout=300)
    calls = [shlex.split(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


IN_WORKSPACE = ["--subscription", "0000-sub", "--resource-group", "rg-ml", "--workspace-name", "ws-ml"]


@pytest.fixture(scope="module")
def documented_run(tmp_path_factory):
    """One run of the documented command with INSTANCE_TYPE, shared by the tests that only read its calls."""
    return run_script(tmp_path_factory.mktemp("documented"), INSTANCE_TYPE="Standard_F8s_v2")


def model_show(spec) -> list[str]:
    """The script's first call: the model version it deploys must exist in Microsoft's registry."""
    return [
        "ml",
        "model",
        "show",
        "--name",
        spec.name,
        "--version",
        spec.version,
        "--registry-name",
        "azureml",
        "--subscription",
        "0000-sub",
        "--output",
        "none",
    ]


def test_script_runs_the_documented_az_ml_commands_in_order(documented_run, asset_spec):
    result, calls = documented_run
    assert result.returncode == 0, result.stderr
    deploy_dir = str(SCRIPT.parent / "deploy")
    model = model_reference(asset_spec, "azureml")
    assert calls == [
        model_show(asset_spec),
        ["ml", "online-endpoint", "show", "--name", "textgen-ci", *IN_WORKSPACE, "--output", "none"],
        [
            "ml",
            "online-endpoint",
            "create",
            "--file",
            f"{deploy_dir}/online-endpoint.yml",
            "--name",
            "textgen-ci",
            *IN_WORKSPACE,
        ],
        [
            "ml",
            "online-deployment",
            "create",
            "--file",
            f"{deploy_dir}/online-deployment.yml",
            "--all-traffic",
            *IN_WORKSPACE,
            "--set",
            "endpoint_name=textgen-ci",
            "name=blue",
            f"model={model}",
            "instance_type=Standard_F8s_v2",
        ],
        [
            "ml",
            "online-endpoint",
            "show",
            "--name",
            "textgen-ci",
            *IN_WORKSPACE,
            "--query",
            "{scoring_uri: scoring_uri, traffic: traffic}",
        ],
        [
            "ml",
            "online-endpoint",
            "invoke",
            "--name",
            "textgen-ci",
            "--deployment-name",
            "blue",
            *IN_WORKSPACE,
            "--request-file",
            f"{deploy_dir}/sample-request.json",
        ],
        [
            "ml",
            "online-deployment",
            "get-logs",
            "--name",
            "blue",
            "--endpoint-name",
            "textgen-ci",
            *IN_WORKSPACE,
            "--lines",
            "100",
        ],
        ["ml", "online-endpoint", "delete", "--name", "textgen-ci", *IN_WORKSPACE, "--yes", "--no-wait"],
    ]


def test_every_command_names_its_workspace_and_the_users_az_defaults_are_never_changed(documented_run):
    _, calls = documented_run
    assert calls and not [c for c in calls if c[0] in ("configure", "account") or "--defaults" in c]
    for call in calls:
        if call[:3] == ["ml", "model", "show"]:  # a registry command: a workspace default would be wrong here
            assert "--workspace-name" not in call and "--resource-group" not in call
            assert call[call.index("--subscription") + 1] == "0000-sub"
        else:
            assert all(part in call for part in IN_WORKSPACE), call


def test_registry_names_the_model_it_serves(tmp_path, asset_spec):
    result, calls = run_script(tmp_path, REGISTRY="contoso-models")
    assert result.returncode == 0, result.stderr
    show = next(c for c in calls if c[:3] == ["ml", "model", "show"])
    assert show[show.index("--registry-name") + 1] == "contoso-models"
    create = next(c for c in calls if c[:3] == ["ml", "online-deployment", "create"])
    assert f"model={model_reference(asset_spec, 'contoso-models')}" in create


@pytest.mark.parametrize(
    "instance_type, refusal",
    [
        (
            "Standard_NC6s_v3",
            "Standard_NC6s_v3 was retired on 2025-09-30; the nearest live SKU of the inference allow-list",
        ),
        ("Standard_DS2_v2", "instance_type Standard_DS2_v2 is not in spec.yaml's inference_compute_allow_list"),
    ],
)
def test_an_instance_type_the_sdk_path_refuses_stops_the_script_before_any_az_call(tmp_path, instance_type, refusal):
    result, calls = run_script(tmp_path, INSTANCE_TYPE=instance_type)
    assert result.returncode == 2 and refusal in result.stderr
    assert calls == []


def test_an_existing_endpoint_is_neither_reused_nor_deleted(tmp_path):
    result, calls = run_script(tmp_path, existing=("textgen-ci",))
    assert result.returncode == 2 and "endpoint textgen-ci already exists" in result.stderr
    assert [c[:3] for c in calls] == [["ml", "model", "show"], ["ml", "online-endpoint", "show"]]
    assert (tmp_path / "endpoints" / "textgen-ci").exists()


def test_an_interruption_while_the_endpoint_is_created_still_deletes_it(tmp_path):
    result, calls = run_script(tmp_path, AZ_SIGNAL="ml online-endpoint create")
    assert result.returncode == 143
    assert [c[:3] for c in calls[-2:]] == [["ml", "online-endpoint", "create"], ["ml", "online-endpoint", "delete"]]
    assert not (tmp_path / "endpoints" / "textgen-ci").exists()


def test_the_script_set_overrides_load_with_the_real_loader(documented_run, asset_spec):
    _, calls = documented_run
    create = next(c for c in calls if c[:3] == ["ml", "online-deployment", "create"])
    pairs = create[create.index("--set") + 1 :]
    deployment = load_online_deployment(
        ROOT / create[create.index("--file") + 1], params_override=[dict([p.split("=", 1)]) for p in pairs]
    )
    assert (deployment.endpoint_name, deployment.name, deployment.instance_type) == (
        "textgen-ci",
        "blue",
        "Standard_F8s_v2",
    )
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


# batch ---------------------------------------------------------------------------------------------

BATCH = ("batch",)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    """One run of `jobs/deploy.sh batch` in a workspace without the cluster."""
    return run_script(tmp_path_factory.mktemp("batch"), mode=BATCH, ENDPOINT_NAME="batch-ci")


def test_batch_creates_cluster_endpoint_and_default_deployment_runs_the_sample_and_deletes_all(batch_run, asset_spec):
    result, calls = batch_run
    assert result.returncode == 0, result.stderr
    deploy_dir = str(SCRIPT.parent / "deploy")
    model = model_reference(asset_spec, "azureml")
    assert calls == [
        model_show(asset_spec),
        ["ml", "batch-endpoint", "show", "--name", "batch-ci", *IN_WORKSPACE, "--output", "none"],
        ["ml", "compute", "show", "--name", "distilgpt2-batch", *IN_WORKSPACE, "--output", "none"],
        [
            "ml",
            "compute",
            "create",
            "--file",
            f"{deploy_dir}/batch-cluster.yml",
            "--name",
            "distilgpt2-batch",
            *IN_WORKSPACE,
        ],
        [
            "ml",
            "batch-endpoint",
            "create",
            "--file",
            f"{deploy_dir}/batch-endpoint.yml",
            "--name",
            "batch-ci",
            *IN_WORKSPACE,
        ],
        [
            "ml",
            "batch-deployment",
            "create",
            "--file",
            f"{deploy_dir}/batch-deployment.yml",
            "--set-default",
            *IN_WORKSPACE,
            "--set",
            "endpoint_name=batch-ci",
            "name=textgen",
            f"model={model}",
        ],
        [
            "ml",
            "batch-endpoint",
            "invoke",
            "--name",
            "batch-ci",
            *IN_WORKSPACE,
            "--input",
            f"{deploy_dir}/batch-sample",
            "--input-type",
            "uri_folder",
            "--query",
            "name",
            "--output",
            "tsv",
        ],
        ["ml", "job", "stream", "--name", "batchjob-1", *IN_WORKSPACE],
        [
            "ml",
            "job",
            "download",
            "--name",
            "batchjob-1",
            "--output-name",
            "score",
            "--download-path",
            calls[8][8],
            *IN_WORKSPACE,
        ],
        ["ml", "batch-endpoint", "delete", "--name", "batch-ci", *IN_WORKSPACE, "--yes", "--no-wait"],
        ["ml", "compute", "delete", "--name", "distilgpt2-batch", *IN_WORKSPACE, "--yes", "--no-wait"],
    ]


def test_batch_commands_name_their_workspace_and_leave_az_defaults_alone(batch_run):
    _, calls = batch_run
    assert not [c for c in calls if c[0] in ("configure", "account") or "--defaults" in c]
    assert all(all(part in call for part in IN_WORKSPACE) for call in calls if call[:3] != ["ml", "model", "show"])


def test_batch_set_overrides_load_with_the_az_clis_batch_deployment_loader(batch_run):
    from .test_batch import az_cli_loader

    _, calls = batch_run
    create = next(c for c in calls if c[:3] == ["ml", "batch-deployment", "create"])
    pairs = create[create.index("--set") + 1 :]
    path = ROOT / create[create.index("--file") + 1]
    deployment = az_cli_loader(path)(path, params_override=[dict([p.split("=", 1)]) for p in pairs])
    assert (deployment.endpoint_name, deployment.name, deployment.output_action) == (
        "batch-ci",
        "textgen",
        "append_row",
    )


def test_an_existing_cluster_is_used_and_never_deleted(tmp_path):
    result, calls = run_script(tmp_path, existing=("compute-distilgpt2-batch",), mode=BATCH, ENDPOINT_NAME="batch-ci")
    assert result.returncode == 0, result.stderr
    assert not [c for c in calls if c[:3] in (["ml", "compute", "create"], ["ml", "compute", "delete"])]
    assert (tmp_path / "endpoints" / "compute-distilgpt2-batch").exists()


def test_an_existing_batch_endpoint_is_neither_reused_nor_deleted(tmp_path):
    result, calls = run_script(tmp_path, existing=("batch-ci",), mode=BATCH, ENDPOINT_NAME="batch-ci")
    assert result.returncode == 2 and "batch endpoint batch-ci already exists" in result.stderr
    assert [c[:3] for c in calls] == [["ml", "model", "show"], ["ml", "batch-endpoint", "show"]]


def test_a_failed_batch_deployment_still_deletes_the_endpoint_and_the_new_cluster(tmp_path):
    result, calls = run_script(tmp_path, mode=BATCH, ENDPOINT_NAME="batch-ci", AZ_FAIL="ml batch-deployment create")
    assert result.returncode == 1
    assert [c[:3] for c in calls[-2:]] == [["ml", "batch-endpoint", "delete"], ["ml", "compute", "delete"]]
    assert not list((tmp_path / "endpoints").iterdir())


def test_an_interruption_while_the_cluster_is_created_still_deletes_it(tmp_path):
    result, calls = run_script(tmp_path, mode=BATCH, ENDPOINT_NAME="batch-ci", AZ_SIGNAL="ml compute create")
    assert result.returncode == 143
    assert [c[:3] for c in calls[-3:]] == [
        ["ml", "compute", "create"],
        ["ml", "batch-endpoint", "delete"],
        ["ml", "compute", "delete"],
    ]


def test_an_unknown_mode_is_refused_before_any_az_call(tmp_path):
    result, calls = run_script(tmp_path, mode=("serverless",))
    assert result.returncode == 2 and "usage: jobs/deploy.sh [online|batch]" in result.stderr
    assert calls == []

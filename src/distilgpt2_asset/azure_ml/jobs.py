"""Jobs in a workspace: submit a job file and follow it to its end, download an output, register
an output as a workspace model. Every Azure failure becomes one AssetError line naming `where`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import AssetError
from .failures import WORKSPACE_ROLE, azure_errors

NAMED_OUTPUTS = "named-outputs"  # where jobs.download puts an output: DIR/named-outputs/<output>


def run_job(client: Any, path: Path, overrides: list[dict], where: str) -> str:
    """Submit a job file (with --set style overrides), stream its log until it ends; its name."""
    from azure.ai.ml import load_job

    try:
        job = load_job(path, params_override=overrides)
    except Exception as exc:
        raise AssetError(f"{path}: {exc}") from None
    with azure_errors(where, WORKSPACE_ROLE):
        submitted = client.jobs.create_or_update(job)
        print(f"submitted {submitted.name}: {submitted.studio_url}", flush=True)
        client.jobs.stream(submitted.name)  # raises when the job fails
    return submitted.name


def download_output(client: Any, job: str, output: str, folder: Path, where: str) -> Path:
    """A job's named output under folder; its path."""
    with azure_errors(where, WORKSPACE_ROLE):
        client.jobs.download(job, download_path=folder, output_name=output)
    return folder / NAMED_OUTPUTS / output


def register_output(client: Any, job: str, output: str, entity: dict[str, Any], where: str) -> Any:
    """A job's output as a workspace MLflow model (entity: name, description, tags, properties)."""
    from azure.ai.ml.entities import Model

    model = Model(path=f"azureml://jobs/{job}/outputs/{output}", type="mlflow_model", **entity)
    with azure_errors(where, WORKSPACE_ROLE):
        return client.models.create_or_update(model)

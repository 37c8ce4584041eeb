"""Run the notebooks as CI does: nbclient, the test interpreter's ipykernel, parameters injected
papermill-style, in one home of their own (never the user's)."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO_ROOT / "notebooks"
CELL_TIMEOUT_S = 600


class ThisInterpreterKernels(KernelSpecManager):
    """ "python3" is ipykernel on the interpreter running the tests, whatever kernelspecs are installed
    (a user-level python3 kernelspec would otherwise win and may point at another Python)."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict

        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


def inject_parameters(notebook, parameters: dict, setup: str = "") -> None:
    """Papermill's convention: a cell tagged injected-parameters right after the one tagged parameters
    (setup: code run there too, e.g. replacing Azure's clients with recorders)."""
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    source = "\n".join([f"{name} = {value!r}" for name, value in parameters.items()] + [setup])
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, cell)


def execute(notebook, env: dict[str, str]):
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreterKernels())
    client = NotebookClient(
        notebook, km=manager, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(REPO_ROOT)}}
    )
    client.execute(env=env)  # a failing cell raises CellExecutionError with its traceback
    return notebook


def tagged_cell(notebook, tag: str):
    return next(cell for cell in notebook.cells if tag in cell.metadata.get("tags", []))


def result_text(notebook, tag: str) -> str:
    """text/plain of the tagged cell's displayed value."""
    outputs = [o for o in tagged_cell(notebook, tag).outputs if o.output_type == "execute_result"]
    assert outputs, f"cell {tag!r} displayed nothing"
    return outputs[0].data["text/plain"]


def result_value(notebook, tag: str):
    return ast.literal_eval(result_text(notebook, tag))


@pytest.fixture(scope="session")
def notebook_env(tmp_path_factory) -> dict[str, str]:
    """The kernel's environment: a home of their own, shared by the notebooks (the first one builds the
    tiny model there, the others reuse that build; it is never registered as spec.yaml's version)."""
    home = tmp_path_factory.mktemp("notebook-home").resolve()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(DISTILGPT2_ASSET_HOME=str(home), TEXTGEN_CACHE_DIR=str(home / "cache" / "textgen"))
    return env


@pytest.fixture(scope="session")
def run_notebook(notebook_env, tiny_model_dir):
    """Execute notebooks/NAME.ipynb on the local backend with the tiny model (plus extra parameters)."""

    def run(name: str, **parameters):
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        inject_parameters(notebook, {"backend": "local", "model_source": str(tiny_model_dir), **parameters})
        return execute(notebook, notebook_env)

    return run


# In the kernel: MLClient (workspace and registry) replaced by the recorders of tests/backends/test_azure_ml.py.
AZURE_RECORDERS = """
import distilgpt2_asset.azure_ml.registry, distilgpt2_asset.backends.azure_ml
from tests.backends.test_azure_ml import recorders
recorder, registry_recorder = recorders(load_spec())
distilgpt2_asset.backends.azure_ml.ml_client = lambda workspace: recorder
distilgpt2_asset.azure_ml.registry.AzureRegistry._connect = lambda self: registry_recorder
"""
AZURE_CALLS = "import json\nprint(json.dumps([call for call, _, _ in recorder.calls]))"


@pytest.fixture(scope="session")
def run_notebook_on_azure(tmp_path_factory):
    """Execute notebooks/NAME.ipynb on the azure backend against recorders; the calls MLClient received.
    Each run has a home of its own: the recorder names every job alike, and jobs download into the home."""

    def run(name: str):
        env = dict(os.environ, DISTILGPT2_ASSET_HOME=str(tmp_path_factory.mktemp("azure-notebook-home")))
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        workspace = {"subscription_id": "sub", "resource_group": "rg", "workspace": "ws"}
        inject_parameters(notebook, {"backend": "azure", **workspace}, AZURE_RECORDERS)
        notebook.cells.append(nbformat.v4.new_code_cell(AZURE_CALLS))
        execute(notebook, env)
        return json.loads(notebook.cells[-1].outputs[0].text)

    return run

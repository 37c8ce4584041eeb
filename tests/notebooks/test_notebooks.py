"""The five notebooks run end to end on the local backend (tiny model), and are committed clean."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import sys
from urllib.parse import urlparse

import nbformat
import pytest

from distilgpt2_asset.backends.base import SAMPLE_CLASSIFICATION_DATA

from .conftest import NOTEBOOKS, execute, result_text, result_value, tagged_cell

NAMES = [
    "text-generation-online-endpoint",
    "sdk-example",
    "evaluate-model-text-generation",
    "finetune-text-classification",
    "finetune-text-generation",
]
SECRETS = {
    "subscription or tenant GUID": re.compile(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I
    ),
    "account key or SAS": re.compile(r"AccountKey=|SharedAccessSignature|[?&]sig=", re.I),
    "bearer token": re.compile(r"Bearer\s+[A-Za-z0-9._-]{20,}|eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"),
    "long base64 secret": re.compile(r"[A-Za-z0-9+/]{40,}={0,2}"),
    "client secret": re.compile(r"client_secret|AZURE_CLIENT_SECRET\s*=", re.I),
}


def committed(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


# committed notebooks ----------------------------------------------------------------------------


def test_every_notebook_the_issue_names_exists_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_carries_no_outputs_and_no_execution_counts(name):
    notebook = committed(name)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_holds_no_secrets(name):
    text = (NOTEBOOKS / f"{name}.ipynb").read_text()
    found = {what for what, pattern in SECRETS.items() if pattern.search(text)}
    assert not found, f"{name}: {found}"


@pytest.mark.parametrize("name", NAMES)
def test_first_code_cell_is_the_parameters_cell_with_local_defaults(name):
    first = next(cell for cell in committed(name).cells if cell.cell_type == "code")
    assert first.metadata.tags == ["parameters"]
    assert 'backend = "local"' in first.source
    # The hub id comes from spec.yaml, never a literal; Azure settings are empty by default.
    assert "model_source = load_spec().hf_model_id" in first.source
    for setting in ("subscription_id", "resource_group", "workspace"):
        assert re.search(rf'^{setting} = ""', first.source, re.M), setting
    # Which model an Azure run uses is explicit: the version Microsoft publishes, unless you name your registry.
    assert re.search(r'^registry_name = "azureml"  # ', first.source, re.M)


@pytest.mark.parametrize("name", NAMES)
def test_cells_call_the_library_and_end_by_cleaning_up(name):
    code = [cell.source for cell in committed(name).cells if cell.cell_type == "code"]
    assert all(len(source.splitlines()) <= 8 for source in code[1:]), "cells are short calls and display"
    assert any("open_backend(" in source for source in code)
    assert code[-1] == "session.close()"


def test_kernel_runs_on_the_test_interpreter():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys\nsys.executable")])
    execute(notebook, dict(os.environ))
    assert ast.literal_eval(notebook.cells[0].outputs[0].data["text/plain"]) == sys.executable


# executed on the local backend --------------------------------------------------------------------


def endpoint_ports(notebook) -> list[int]:
    """Ports of the endpoints the notebook displayed (Endpoint(... scoring_uri='http://127.0.0.1:PORT/score'))."""
    text = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    return [urlparse(url).port for url in re.findall(r"scoring_uri='(http://[^']+)'", text)]


def assert_servers_stopped(notebook) -> None:
    ports = endpoint_ports(notebook)
    assert ports, "the notebook displayed its endpoint"
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"a server still listens on {port}"


def test_text_generation_online_endpoint_answers_the_card_request(run_notebook, asset_spec):
    notebook = run_notebook("text-generation-online-endpoint")
    answer = result_value(notebook, "answer")
    prompts = asset_spec.sample_request["input_data"]
    assert isinstance(answer, list) and len(answer) == len(prompts)
    for text, prompt in zip(answer, prompts, strict=True):
        assert isinstance(text, str) and text.startswith(prompt) and len(text) > len(prompt)
    assert_servers_stopped(notebook)


def test_sdk_example_reads_tags_picks_a_fitting_sku_and_scores(run_notebook, asset_spec):
    from distilgpt2_asset.skus import meets, sku_catalog

    notebook = run_notebook("sdk-example")
    overview = result_text(notebook, "model-overview")
    assert asset_spec.task in overview and str(asset_spec.min_sku_spec("inference")) in overview
    sku = result_value(notebook, "sku")
    assert sku in asset_spec.allow_list("inference") and meets(sku, asset_spec.min_sku_spec("inference"))
    assert sku_catalog()[sku].gpus == 0  # the smallest that fits is a CPU SKU
    answer = result_value(notebook, "answer")
    assert len(answer) == 2 and all(isinstance(text, str) and text for text in answer)
    # Greedy, continuation only: the tiny model continues the card's prompt with its training text.
    assert answer[0].startswith("to learn something new every day")
    assert_servers_stopped(notebook)


def test_evaluate_notebook_shows_metrics_table_and_chart(run_notebook):
    notebook = run_notebook("evaluate-model-text-generation", rows=3, generation_params={"max_new_tokens": 20})
    table = result_text(notebook, "metrics")
    for metric in ("rouge1", "rouge2", "bleu_3", "bleu_4"):
        assert metric in table
    chart = [o for o in tagged_cell(notebook, "chart").outputs if "image/png" in o.get("data", {})]
    assert chart, "the chart cell shows the PNG"


def test_finetune_notebook_registers_deploys_and_classifies(run_notebook):
    texts = ["we talked about the river", "she wrote of the software"]
    notebook = run_notebook("finetune-text-classification", epochs=1, texts=texts)
    labels = result_value(notebook, "labels")
    train = SAMPLE_CLASSIFICATION_DATA / "train.jsonl"
    trained = {json.loads(line)["label"] for line in train.read_text().splitlines()}
    assert len(labels) == len(texts)
    assert all(item["label"] in trained and 0 <= item["score"] <= 1 for item in labels)
    assert "f1_macro" in result_text(notebook, "history")
    assert_servers_stopped(notebook)


def test_finetune_notebook_on_your_own_text_lowers_perplexity_registers_deploys_and_generates(run_notebook):
    prompts = ["Ticket 300: the printer in", "Status: resolved, we"]
    notebook = run_notebook("finetune-text-generation", epochs=1, max_length=32, prompts=prompts)
    perplexity = result_value(notebook, "perplexity")
    assert perplexity["after"] < perplexity["before"]
    completions = result_value(notebook, "completions")
    assert len(completions) == len(prompts) and all(isinstance(text, str) and text for text in completions)
    assert "perplexity" in result_text(notebook, "history")
    assert_servers_stopped(notebook)


# the same cells on the azure backend, MLClient replaced by a recorder ----------------------------

DEPLOY = [
    "online_endpoints.get",
    "online_endpoints.begin_create_or_update",
    "online_deployments.begin_create_or_update",
    "online_endpoints.begin_create_or_update",
    "online_endpoints.get",
]
DELETE = ["online_endpoints.begin_delete"]
JOB = ["jobs.create_or_update", "jobs.stream", "jobs.download"]


@pytest.mark.parametrize(
    "name, calls",
    [
        ("text-generation-online-endpoint", DEPLOY + ["online_endpoints.invoke"] + DELETE),
        ("sdk-example", DEPLOY + ["online_endpoints.invoke"] + DELETE),
        ("evaluate-model-text-generation", JOB),
        (
            "finetune-text-classification",
            JOB + ["models.create_or_update"] + DEPLOY + ["online_endpoints.invoke"] + DELETE,
        ),
        (
            "finetune-text-generation",
            JOB + ["models.create_or_update"] + DEPLOY + ["online_endpoints.invoke"] + DELETE,
        ),
    ],
)
def test_the_same_cells_drive_azure_ml_on_the_azure_backend(run_notebook_on_azure, name, calls):
    assert run_notebook_on_azure(name) == calls

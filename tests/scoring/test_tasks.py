"""Task dispatch: the MLmodel's task picks the service; anything else refuses to start, saying why."""

from __future__ import annotations

import shutil

import pytest

from distilgpt2_scoring.model_files import ModelFilesError, write_manifest
from distilgpt2_scoring.tasks import SERVICES, load_service, model_task, service_class


def test_the_built_model_declares_text_generation(tiny_mlflow_model):
    assert model_task(tiny_mlflow_model) == "text-generation" and "text-generation" in SERVICES


def test_a_task_without_a_service_is_refused_by_name(tiny_mlflow_model, tmp_path):
    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    mlmodel = model / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("task: text-generation", "task: summarization"))
    write_manifest(model)  # a consistent model, just of another task
    with pytest.raises(ModelFilesError, match="task 'summarization' is not served here"):
        load_service(model)


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelFilesError, match="no MLflow model"):
        load_service(tmp_path)


def test_each_service_names_the_task_it_is_registered_for():
    assert {task: service_class(task).task for task in SERVICES} == {task: task for task in SERVICES}

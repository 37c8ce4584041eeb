"""Pick the service class for a model by the task its MLmodel declares.

Every service has `classmethod load(mlflow_dir: Path)` and `predict(payload) -> JSON value`,
raising ServingError subclasses for client mistakes. Classes are imported lazily so that a
text-generation server never imports the classification code and vice versa.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import yaml

from .model_files import ModelFilesError, locate_mlflow_folder, verify_manifest

SERVICES = {
    "text-generation": "distilgpt2_scoring.service:TextGenerationService",
    "text-classification": "distilgpt2_scoring.classification:TextClassificationService",
}


class Service(Protocol):
    @classmethod
    def load(cls, mlflow_dir: Path) -> "Service": ...

    def predict(self, payload: Any) -> Any: ...


def model_task(mlflow_dir: Path) -> str:
    """flavors.transformers.task of the MLmodel file."""
    mlmodel = Path(mlflow_dir) / "MLmodel"
    try:
        return str(yaml.safe_load(mlmodel.read_text())["flavors"]["transformers"]["task"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ModelFilesError(f"{mlmodel}: cannot read flavors.transformers.task ({exc})") from None


def service_class(task: str) -> type:
    if task not in SERVICES:
        raise ModelFilesError(f"task {task!r} is not served here; served tasks: {', '.join(SERVICES)}")
    module_name, class_name = SERVICES[task].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_service(model_root: Path) -> Service:
    """Locate the MLflow folder under model_root, verify its manifest, load the task's service."""
    mlflow_dir = locate_mlflow_folder(Path(model_root))
    verify_manifest(mlflow_dir)
    return service_class(model_task(mlflow_dir)).load(mlflow_dir)

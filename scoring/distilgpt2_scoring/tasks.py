"""Open the model (integrity first), then load the service its MLmodel's task asks for.

Every service has `classmethod load(content: ModelContent, settings)`, `predict(payload,
client_gone=None)` (raising ServingError subclasses for client mistakes), `ready` and `close()`.
Classes are imported lazily so that a text-generation server never imports the classification
code and vice versa.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import yaml

from .model_files import ModelContent, ModelFilesError, open_model
from .settings import ServingSettings

SERVICES = {
    "text-generation": "distilgpt2_scoring.service:TextGenerationService",
    "text-classification": "distilgpt2_scoring.classification:TextClassificationService",
}
logger = logging.getLogger(__name__)


class Service(Protocol):
    task: ClassVar[str]  # its key in SERVICES
    settings: ServingSettings

    @property
    def ready(self) -> bool: ...

    @classmethod
    def load(cls, content: ModelContent, settings: ServingSettings | None = None) -> Service: ...

    def predict(self, payload: Any, client_gone: Callable[[], bool] | None = None) -> Any: ...

    def close(self) -> None: ...


def model_task(mlflow_dir: Path) -> str:
    """flavors.transformers.task of the MLmodel file."""
    mlmodel = Path(mlflow_dir) / "MLmodel"
    try:
        return str(yaml.safe_load(mlmodel.read_text())["flavors"]["transformers"]["task"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ModelFilesError(f"{mlmodel}: cannot read flavors.transformers.task ({exc})") from None


def service_class(task: str) -> type[Service]:
    if task not in SERVICES:
        raise ModelFilesError(f"task {task!r} is not served here; served tasks: {', '.join(SERVICES)}")
    module_name, class_name = SERVICES[task].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_service(model_root: Path, settings: ServingSettings | None = None) -> Service:
    """Locate and hash the MLflow folder under model_root (its manifest and the deployment's pinned
    digest checked), say exactly what is served, and load the task's service."""
    settings = settings or ServingSettings()
    content = open_model(Path(model_root), settings.expected_content_sha256)
    if settings.expected_content_sha256:
        logger.info("serving %s: content sha256 %s, as pinned", content.folder, content.digest)
    else:
        logger.warning(
            "serving %s: content sha256 %s; not pinned: set TEXTGEN_EXPECTED_CONTENT_SHA256=%s in the deployment to "
            "refuse any other content",
            content.folder, content.digest, content.digest,
        )  # fmt: skip
    if not content.has_manifest:
        logger.info(
            "%s carries no sha256 manifest (not built by distilgpt2-asset): its %d files were hashed as found",
            content.folder,
            len(content.files),
        )
    return service_class(model_task(content.folder)).load(content, settings)

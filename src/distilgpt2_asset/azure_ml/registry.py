"""An Azure ML registry: the only module that makes Azure network calls for publishing.

Signs in with workspace.credential() (in GitHub Actions: azure/login with an OIDC federated
credential, then the Azure CLI session; locally: `az login`), then uses workspace.ml_client's
registry client for models.get / models.create_or_update. Every Azure failure
becomes one AssetError line (azure_errors); nothing secret is printed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from azure.ai.ml.entities import Model
from azure.core.exceptions import ResourceNotFoundError

from distilgpt2_scoring.model_files import MLFLOW_SUBFOLDER

from ..errors import AssetError
from ..publish import MetadataUpdate, Payload
from .failures import REGISTRY_ROLE, azure_errors
from .workspace import credential, ml_client

# Azure ML registry names: 2-32 characters, letters, digits, '-' and '_', starting with a
# letter or digit (learn.microsoft.com, "Manage Azure Machine Learning registries").
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")
ARM_SCOPE = "https://management.azure.com/.default"
UPLOAD_AS = MLFLOW_SUBFOLDER  # the folder name the published asset's files sit under


def check_registry_name(name: str) -> str:
    if not REGISTRY_NAME.match(name or ""):
        raise AssetError(
            f"bad Azure ML registry name {name!r}: 2-32 characters, letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def model_entity(payload: Payload, path: Path | str) -> Model:
    """The azure.ai.ml Model a publish creates; the dry run prints this same object."""
    return Model(
        name=payload.name,
        version=payload.version,
        type=payload.type,
        path=str(path),
        description=payload.description,
        tags=dict(payload.tags),
        properties=dict(payload.properties),
    )


class AzureRegistry:
    """One Azure ML registry; connects on first use (client: an MLClient made elsewhere)."""

    def __init__(self, name: str, client: Any = None):
        self.name = check_registry_name(name)
        self._client = client

    def model_uri(self, name: str, version: str) -> str:
        return f"azureml://registries/{self.name}/models/{name}/versions/{version}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        signed_in = credential()
        with self._errors():
            signed_in.get_token(ARM_SCOPE)  # fail here, plainly, rather than deep inside MLClient
            return ml_client(registry=self.name, signed_in=signed_in)

    def get(self, name: str, version: str) -> Model | None:
        client = self.client  # a registry that is not found must not read as a version that is not
        with self._errors():
            try:
                return client.models.get(name=name, version=version)
            except ResourceNotFoundError:
                return None

    def create(self, payload: Payload) -> Model:
        """Upload the files, then create the version (one call: a failed upload creates nothing)."""
        with _upload_folder(payload.path) as folder, self._errors():
            return self.client.models.create_or_update(model_entity(payload, folder))

    def update(self, existing: Model, update: MetadataUpdate) -> Model:
        """Tags and description only, all a registered version lets you update: it keeps its files
        (its path is already in the registry) and its properties as they are."""
        existing.tags = update.tags
        existing.description = update.description
        with self._errors():
            return self.client.models.create_or_update(existing)

    def _errors(self):
        return azure_errors(f"Azure ML registry {self.name!r}", REGISTRY_ROLE)


@contextmanager
def _upload_folder(model_dir: Path) -> Iterator[Path]:
    """The model under the name the published asset uses (mlflow_model_folder/), linked not copied."""
    model_dir = Path(model_dir)
    if model_dir.name == UPLOAD_AS:
        yield model_dir
        return
    with tempfile.TemporaryDirectory(prefix="publish-") as staging:
        folder = Path(staging) / UPLOAD_AS
        shutil.copytree(model_dir, folder, copy_function=_link_or_copy)
        yield folder


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)

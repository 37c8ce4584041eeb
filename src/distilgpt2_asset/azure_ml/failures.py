"""Azure failures as one line a user can act on, the same for every module that calls Azure.

Three cases that need different actions are told apart: not signed in (no credential could get a
token: sign in), signed in but refused (HTTP 401 or 403 from the service: another tenant, an expired
sign-in, or a missing role, named here), and not found. Nothing secret is printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import AssetError

NOT_SIGNED_IN = (
    "not signed in to Azure: DefaultAzureCredential found no credential it could use "
    "(environment, workload identity, managed identity, Azure CLI, ...); "
    "in GitHub Actions run azure/login with OIDC first, locally run `az login`"
)
# The least a user needs, per kind of resource (Azure built-in roles).
REGISTRY_ROLE = (
    "the AzureML Registry User role on the registry (or a custom role with "
    "Microsoft.MachineLearningServices/registries/read, registries/assets/read and registries/assets/write)"
)
WORKSPACE_ROLE = "the AzureML Data Scientist role on the workspace"
# Autoscale settings are Azure Monitor resources in the workspace's resource group.
AUTOSCALE_ROLE = "the Monitoring Contributor role on the resource group (microsoft.insights/autoscalesettings/write)"


def refused(where: str, status: int, role: str) -> str:
    if status == 401:
        return (
            f"{where} did not accept this identity's token (HTTP 401): signed in, but to another tenant or the "
            f"sign-in expired; check `az account show`, sign in again (`az login --tenant ...`); it needs {role}"
        )
    return f"{where} refused this identity (HTTP {status}): signed in, but without permission; it needs {role}"


@contextmanager
def azure_errors(where: str, role: str) -> Iterator[None]:
    """Turn what azure-core, azure-identity and azure.ai.ml raise into one AssetError line."""
    from azure.ai.ml.exceptions import MlException
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    try:
        yield
    except ClientAuthenticationError as exc:  # CredentialUnavailableError included
        if exc.status_code in (401, 403):  # the service answered: a token was sent and refused
            raise AssetError(refused(where, exc.status_code, role)) from None
        raise AssetError(NOT_SIGNED_IN) from None
    except ResourceNotFoundError:
        raise AssetError(f"{where} not found, or not visible to this identity") from None
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            raise AssetError(refused(where, exc.status_code, role)) from None
        status = f"HTTP {exc.status_code}: " if exc.status_code else ""
        raise AssetError(f"{where}: {status}{first_line(exc)}") from None
    except ServiceRequestError as exc:
        raise AssetError(f"cannot reach Azure for {where}: {first_line(exc)}") from None
    except (AzureError, MlException) as exc:  # e.g. azure.ai.ml's validation of a model folder
        raise AssetError(f"{where}: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    text = next((line for line in str(exc).splitlines() if line.strip()), "")
    return " ".join(text.split()) or type(exc).__name__


def one_line(exc: BaseException) -> str:
    """azure.ai.ml's schema errors embed a JSON dict of field -> messages: flatten it to one line;
    other errors: their first line."""
    text = str(exc)
    try:
        match = re.search(r"\{.*\}", text, re.S)
        text = "; ".join(f"{field}: {msg}" for field, msg in _flatten(json.loads(match.group(0) if match else "")))
    except (AttributeError, ValueError):
        text = next((line for line in text.splitlines() if line.strip()), "")
    return " ".join(text.split()) or type(exc).__name__


def _flatten(errors: Any, prefix: str = ""):
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _flatten(value, f"{prefix}{key}.")
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        yield prefix.rstrip("."), " ".join(errors)
    else:
        for item in errors if isinstance(errors, list) else [errors]:
            yield from _flatten(item, prefix)

"""The Azure ML workspace a command talks to, and the one place an MLClient is made.

Settings come from flags, else these environment variables (the names azure-identity and the
azureml-examples notebooks use): AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME.
Credentials come from azure-identity's DefaultAzureCredential (az login, managed identity,
AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, ...); nothing secret is read or stored here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import AssetError

# field -> (flag, environment variable)
SETTINGS = {
    "subscription_id": ("--subscription-id", "AZURE_SUBSCRIPTION_ID"),
    "resource_group": ("--resource-group", "AZURE_RESOURCE_GROUP"),
    "workspace_name": ("--workspace-name", "AZUREML_WORKSPACE_NAME"),
}


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    workspace_name: str

    @property
    def arm_prefix(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace_name}"
        )


# What a dry run without workspace settings prints in their place.
PLACEHOLDER_WORKSPACE = Workspace("{subscriptionId}", "{resourceGroupName}", "{workspaceName}")


def resolve_workspace(
    flags: Mapping[str, str | None], environ: Mapping[str, str] = os.environ, required: bool = True
) -> Workspace | None:
    """Flags first, then environment variables; every missing setting named in one line."""
    values = {field: flags.get(field) or environ.get(env, "") for field, (_, env) in SETTINGS.items()}
    missing = [f"{flag} or {env}" for field, (flag, env) in SETTINGS.items() if not values[field]]
    if not missing:
        return Workspace(**values)
    if required:
        raise AssetError(f"missing Azure ML workspace settings: {'; '.join(missing)}")
    return None


def credential() -> Any:
    """The one way this package signs in: azure-identity's DefaultAzureCredential (no call is made yet)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def monitor_client(workspace: Workspace) -> Any:
    """Azure Monitor's client for the workspace's subscription (autoscale settings), signed in the same way."""
    from azure.mgmt.monitor import MonitorManagementClient

    return MonitorManagementClient(credential(), workspace.subscription_id)


def ml_client(workspace: Workspace | None = None, *, registry: str | None = None, signed_in: Any = None) -> Any:
    """The one MLClient factory: for a workspace, or for an Azure ML registry by name (MLClient finds
    the registry's subscription and region itself); signed_in: a credential already made (else credential())."""
    from azure.ai.ml import MLClient

    signed_in = signed_in or credential()
    if registry is not None:
        return MLClient(signed_in, registry_name=registry)
    if workspace is None:
        raise ValueError("ml_client needs a workspace or a registry name")
    return MLClient(signed_in, workspace.subscription_id, workspace.resource_group, workspace.workspace_name)

"""An online endpoint once it exists: its scoring URI, one request to it, its deletion.

(Creating one is deploy.py's submit.) Every Azure failure becomes one AssetError line naming `where`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .failures import WORKSPACE_ROLE, azure_errors


def scoring_uri(client: Any, name: str, where: str) -> tuple[str, str]:
    """The endpoint's scoring URI and its Azure region."""
    with azure_errors(where, WORKSPACE_ROLE):
        endpoint = client.online_endpoints.get(name)
    return endpoint.scoring_uri, endpoint.location


def invoke(client: Any, name: str, deployment: str, request: dict, where: str) -> Any:
    """One request to one deployment, through the SDK (which signs it); the parsed answer."""
    with tempfile.TemporaryDirectory(prefix="request-") as folder:
        request_file = Path(folder) / "request.json"
        request_file.write_text(json.dumps(request))
        with azure_errors(where, WORKSPACE_ROLE):
            answer = client.online_endpoints.invoke(
                endpoint_name=name, deployment_name=deployment, request_file=str(request_file)
            )
    return json.loads(answer)


def delete(client: Any, name: str, where: str) -> None:
    """Delete the endpoint and its deployments; one already gone is fine."""
    from azure.core.exceptions import ResourceNotFoundError

    with azure_errors(where, WORKSPACE_ROLE):
        try:
            client.online_endpoints.begin_delete(name=name).result()
        except ResourceNotFoundError:
            pass

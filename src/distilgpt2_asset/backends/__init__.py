"""One small API for the notebooks, the same on both backends.

    session = open_backend("local" | "azure", ...)
    model = session.find_model()                       # spec.yaml's version in the registry, tags read back
    sku = pick_sku(model, "inference")                 # the smallest allow-listed SKU meeting the minimum
    endpoint = session.deploy(model, sku)              # checked by deploy.py, then served (here or on Azure)
    answer = session.invoke(endpoint, request)
    report = session.evaluate(model)                   # metrics + chart
    run = session.finetune(model); classifier = session.register(run)
    session.close()                                    # deletes the endpoints this session made

"local": the local MLflow registry, azmlinfsrv on 127.0.0.1, evaluation and finetuning in this
process. "azure": an Azure ML registry and workspace through MLClient (DefaultAzureCredential).
"""

from __future__ import annotations

from ..azure_ml.deploy import MICROSOFT_REGISTRY
from ..azure_ml.workspace import resolve_workspace
from ..errors import AssetError
from ..spec import AssetSpec, load_spec
from .base import Backend, Endpoint, EvaluationReport, FinetuneRun, ModelInfo, endpoint_name, pick_sku, sku_fits
from .tables import finetune_table, metrics_table, model_overview, sku_table

BACKENDS = ("local", "azure")

__all__ = [
    "Backend", "Endpoint", "EvaluationReport", "FinetuneRun", "ModelInfo", "open_backend", "pick_sku", "sku_fits",
    "endpoint_name", "model_overview", "sku_table", "metrics_table", "finetune_table",
]  # fmt: skip


def open_backend(
    backend: str = "local",
    *,
    model_source: str | None = None,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    workspace: str | None = None,
    registry_name: str | None = None,
    spec: AssetSpec | None = None,
) -> Backend:
    """model_source (local): hub id or snapshot folder the registry version is built from when missing.
    registry_name (azure): "azureml" (the default) for the version Microsoft publishes, or the name of
    your own registry for what `distilgpt2-asset publish --registry NAME` uploaded.
    Azure settings left empty come from AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME."""
    spec = spec or load_spec()
    if backend == "local":
        from .local import LocalBackend

        return LocalBackend(spec, model_source)
    if backend == "azure":
        from .azure_ml import AzureBackend

        flags = {"subscription_id": subscription_id, "resource_group": resource_group, "workspace_name": workspace}
        settings = resolve_workspace(flags)  # required: raises, naming every missing setting
        assert settings is not None
        return AzureBackend(spec, settings, registry_name or MICROSOFT_REGISTRY)
    raise AssetError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")

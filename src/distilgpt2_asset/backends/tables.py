"""What the notebooks display: pandas tables of a model's tags, its SKUs, metrics."""

from __future__ import annotations

import pandas as pd

from ..spec import SCENARIOS
from .base import EvaluationReport, FinetuneRun, ModelInfo, sku_fits


def model_overview(model: ModelInfo) -> pd.DataFrame:
    """Task, licence and, per scenario, the allow-list size and minimum SKU, as the registry tags say."""
    rows: dict[str, str | int] = {
        "name": model.name,
        "version": model.version,
        "registry": model.uri,
        "task": model.task,
        "license": model.tags.get("license", ""),
    }
    for scenario in SCENARIOS:
        allowed = model.allow_list(scenario)
        if allowed:
            rows[f"{scenario} SKUs allowed"] = len(allowed)
            rows[f"{scenario} minimum (vCPUs|GPUs|memoryGB|tempDiskGB)"] = str(model.min_sku_spec(scenario) or "")
    return pd.DataFrame({"value": rows})


def sku_table(model: ModelInfo, scenario: str) -> pd.DataFrame:
    """The scenario's allow-list, smallest fitting SKU first."""
    return pd.DataFrame(
        [
            {
                "sku": fit.sku,
                "vCPUs": fit.spec.vcpus if fit.spec else None,
                "GPUs": fit.spec.gpus if fit.spec else None,
                "memory GB": fit.spec.memory_gb if fit.spec else None,
                "temp disk GB": fit.spec.temp_disk_gb if fit.spec else None,
                "fits": fit.fits,
                "why not": fit.reason,
            }
            for fit in sku_fits(model, scenario)
        ]
    ).set_index("sku")


def metrics_table(report: EvaluationReport) -> pd.DataFrame:
    """One column per evaluated model, one row per metric."""
    return pd.DataFrame(report.metrics).round(4)


def finetune_table(run: FinetuneRun) -> pd.DataFrame:
    """Validation metrics at each evaluation of the finetune, the best step marked."""
    history = pd.DataFrame(run.metrics.get("history") or [])
    if history.empty:
        return history
    best = (run.metrics.get("best") or {}).get("step")
    history["best"] = history["step"] == best
    return history.set_index("step").round(4)

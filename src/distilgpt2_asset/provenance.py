"""What a build is (the source and revision its MLmodel records) and who may carry the asset's name.

Only a build of spec.yaml's hub id at its pinned SHA may become `NAME VERSION` in a registry; a model
finetuned from it records the same source but is not it (it registers under a name of its own).
Every path that reuses a build it did not just make (serve, register, publish, the notebooks'
local backend) checks it here, so a testing model left in the default folder is never passed
off as distilgpt2. A testing model is served on purpose from its source (`serve --source DIR`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import AssetError
from .spec import AssetSpec

LOCAL_REVISION = "local"  # what build.py records for a local snapshot folder
SERVE_ON_PURPOSE = (
    "to serve a build of another source on purpose: distilgpt2-asset serve --source DIR (notebooks: model_source=DIR)"
)


@dataclass(frozen=True)
class BuiltFrom:
    """The source (hub id or snapshot folder) and revision a build records in its MLmodel metadata."""

    source: str
    revision: str
    finetuning_task: str | None = None  # set for a model finetuned from the source
    base_content_sha256: str | None = None  # the finetuned model's base MLflow folder, when it had a manifest

    def __str__(self) -> str:
        made = f"a {self.finetuning_task} finetune" if self.finetuning_task else "a build"
        if self.revision == LOCAL_REVISION:
            return f"{made} of the local folder {self.source}"
        return f"{made} of {self.source}@{self.revision}"


def built_from(mlflow_dir: Path) -> BuiltFrom:
    try:
        mlmodel = yaml.safe_load((Path(mlflow_dir) / "MLmodel").read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AssetError(f"{mlflow_dir}: cannot read MLmodel ({exc})") from None
    metadata = mlmodel.get("metadata") if isinstance(mlmodel, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    finetuned = metadata.get("is_finetuned_model") is True
    return BuiltFrom(
        str(metadata.get("source_model_id", "an unrecorded source")),
        str(metadata.get("source_revision", "?")),
        str(metadata.get("finetuning_task", "?")) if finetuned else None,
        metadata.get("base_content_sha256") if finetuned else None,
    )


def is_pinned_source(spec: AssetSpec, source: str | None) -> bool:
    """True for what builds the asset itself: no source, or spec.yaml's hub id (always at the pinned SHA)."""
    return source is None or (source == spec.hf_model_id and not Path(source).expanduser().is_dir())


def require_pinned(
    spec: AssetSpec, mlflow_dir: Path, what: str | None = None, on_purpose: str = SERVE_ON_PURPOSE
) -> None:
    """Refuse a build that is not spec.yaml's hub id at its pinned SHA, saying what it is and what to do."""
    build = built_from(mlflow_dir)
    if build.finetuning_task or (build.source, build.revision) != (spec.hf_model_id, spec.revision):
        raise AssetError(
            f"{what or mlflow_dir} is {build}, not spec.yaml's {spec.hf_model_id}@{spec.revision}: "
            f"only that may become {spec.name} {spec.version}; {on_purpose}"
        )

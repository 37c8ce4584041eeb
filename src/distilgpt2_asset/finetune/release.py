"""What a finetuned model is registered and published as: the task names, its registered name, and
its spec (name, version, tags, card). Imports no torch: publish and register use it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ..errors import AssetError
from ..spec import AssetSpec

if TYPE_CHECKING:
    from distilgpt2_scoring.model_files import ModelContent

TASK: Final = "text-classification"  # the card's finetuning task
GENERATION_TASK: Final = "text-generation"
TASKS = (TASK, GENERATION_TASK)
# The registered name of a finetuned model: distilgpt2 -> distilgpt2-text-classification, distilgpt2-finetuned
# (the same task as the base: a name of its own, never the base's, and never mistaken for it).
REGISTERED_SUFFIXES = {TASK: "-text-classification", GENERATION_TASK: "-finetuned"}
REGISTERED_SUFFIX = REGISTERED_SUFFIXES[TASK]


class _FinetunedSpec(AssetSpec):
    """The base asset's spec as the finetuned model registers it: its own name, version, task and card."""

    def __init__(self, base: AssetSpec, task: str, digest: str, description: str):
        data = dict(base.data)
        data.update(name=base.name + REGISTERED_SUFFIXES[task], version=digest[:12])
        super().__init__(data, base.path)
        # The card's tags are derived from system_metadata; the finetuned model's own are these.
        self._tags = {**base.tags, "task": task, "base_model": base.name, "base_model_version": base.version}
        self._description = description

    @property
    def tags(self) -> dict[str, Any]:
        return self._tags

    @property
    def description(self) -> str:
        return self._description


def finetuned_release(
    spec: AssetSpec, content: ModelContent, allow_unpinned: bool = False
) -> tuple[AssetSpec, dict[str, str]] | None:
    """What a finetuned model is registered and published as: (its spec: NAME-text-classification or
    NAME-finetuned, version = the first 12 hex digits of its content digest; the base recorded as
    base_* properties), or None for a model that is not a finetune. Its base must be spec.yaml's
    pinned build unless allow_unpinned (testing models). content: the model opened (hashed) once."""
    from ..provenance import built_from

    made = built_from(content.folder)
    if made.finetuning_task is None:
        return None
    if made.finetuning_task not in REGISTERED_SUFFIXES:
        raise AssetError(f"{content.folder} is {made}, a task this version does not register")
    if not allow_unpinned and (made.source, made.revision) != (spec.hf_model_id, spec.revision):
        raise AssetError(
            f"{content.folder} is {made}, not of spec.yaml's {spec.hf_model_id}@{spec.revision}; "
            "pass --allow-unpinned to publish a finetuned testing model on purpose"
        )
    card = content.folder / "model_card.md"
    task = made.finetuning_task
    description = card.read_text(encoding="utf-8") if card.is_file() else f"{spec.name} finetuned for {task}"
    base = {"base_content_sha256": made.base_content_sha256} if made.base_content_sha256 else {}
    return _FinetunedSpec(spec, task, content.digest, description), base


def register_finetuned(spec: AssetSpec, model_dir: Path, registry_uri: str | None = None):
    """Register a finetuned model in the local registry as finetuned_release says (any base: this is
    the finetune command's own registration); its version is its content digest, so registering the
    same model twice is a no-op and every different model gets a new version."""
    from distilgpt2_scoring.model_files import open_model

    from ..registry import PROPERTY_PREFIX, LocalRegistry

    release = finetuned_release(spec, open_model(Path(model_dir), require_manifest=True), allow_unpinned=True)
    if release is None:
        raise AssetError(f"{model_dir} is not a model made by `distilgpt2-asset finetune`")
    finetuned, base = release
    tags = {PROPERTY_PREFIX + key: value for key, value in base.items()}
    return LocalRegistry(registry_uri).register(finetuned, Path(model_dir), tags)

"""Publish the asset under spec.yaml's name and version, with the rules of Azure's own publisher.

validate -> verify the built model (sha256 manifest, pinned source) -> scan it (model_scan) -> payload -> registry:
  * a new version is created (files uploaded, then the version made in one call);
  * the same content under an existing version updates its tags and description only (all that
    the az ml CLI reference lets a registered version update); a new or changed property is
    refused like different content;
  * different content under an existing version is refused: bump `version` in spec.yaml.
"Same content" is decided by the `content_sha256` property: the digest of the model's manifest.

Two registries: the local MLflow registry (registry.LocalRegistry, the default) and an Azure ML
registry (azure_ml.registry, the only module that talks to Azure).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from distilgpt2_scoring.model_files import ModelContent, open_model

from .errors import AssetError
from .model_scan import SCAN_PROPERTIES, ScanReport
from .provenance import require_pinned
from .registry import (
    ASSET_VERSION_TAG,
    CONTENT_TAG,
    CREATED,
    METADATA_UPDATED,
    PROPERTY_PREFIX,
    UNCHANGED,
    LocalRegistry,
    refuse_other_content,
)
from .spec import AssetSpec

CONTENT_PROPERTY = CONTENT_TAG  # one name for the content digest in both registries
MANIFEST_PROPERTY = "sha256_manifest"
COMMIT_PROPERTY = "git_commit"
# Where a version came from and how it was scanned, not what it is: kept from the first publish,
# never a conflict (a later scan of the same content may use newer tools).
PROVENANCE_PROPERTIES = (COMMIT_PROPERTY, *SCAN_PROPERTIES)
UNKNOWN_COMMIT = "unknown"
_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Payload:
    """Everything a registry receives for one model version."""

    name: str
    version: str
    type: str
    path: Path  # the verified MLflow folder
    description: str
    description_source: Path
    tags: dict[str, str]
    properties: dict[str, str]

    @property
    def content_digest(self) -> str:
        return self.properties[CONTENT_PROPERTY]

    def summary(self) -> dict[str, Any]:
        """The payload as JSON-ready fields (the description by source and digest, not in full)."""
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "path": str(self.path),
            "description_source": str(self.description_source),
            "description_sha256": hashlib.sha256(self.description.encode()).hexdigest(),
            "tags": self.tags,
            "properties": self.properties,
        }


@dataclass(frozen=True)
class Published:
    """What a registry already holds under the payload's name and version."""

    tags: dict[str, str]
    properties: dict[str, str]
    description: str | None = None  # None: this registry does not keep a per-version card


@dataclass(frozen=True)
class MetadataUpdate:
    tags: dict[str, str]
    properties: dict[str, str]
    description: str | None
    changes: list[str]  # e.g. ["tag license", "description"]


@dataclass(frozen=True)
class Outcome:
    action: str  # registry.CREATED | UNCHANGED | METADATA_UPDATED
    where: str  # the model's URI in its registry
    changes: tuple[str, ...] = ()

    def __str__(self) -> str:
        detail = f" ({', '.join(self.changes)})" if self.changes else ""
        return f"{self.action}: {self.where}{detail}"


# checks before anything is sent -----------------------------------------------------------------


def check_version(spec: AssetSpec, expected: str | None) -> None:
    """--version (CI passes the git tag, `v15` or `15`) must name spec.yaml's version."""
    if expected is None:
        return
    wanted = expected.strip().removeprefix("v")
    if not wanted.isdigit():
        raise AssetError(
            f"unknown version {expected!r}: expected a whole number such as {spec.version} or v{spec.version}"
        )
    if wanted != spec.version:
        raise AssetError(
            f"unknown version {expected!r}: spec.yaml is at version {spec.version}; "
            f"set `version: {wanted}` in spec.yaml (and commit it) before publishing {wanted}"
        )


def refuse_invalid(spec: AssetSpec) -> None:
    """Publish nothing that `distilgpt2-asset validate` rejects; list every problem."""
    from .validate import validate_asset

    problems = validate_asset(spec)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise AssetError(f"{spec.path} has {len(problems)} problem(s); refusing to publish:\n{listed}")


def require_pinned_build(spec: AssetSpec, content: ModelContent, allow_unpinned: bool) -> None:
    """The opened MLflow folder (every file hashed, checked against its manifest) is refused if not
    built from the pinned revision."""
    if not allow_unpinned:
        rebuild = (
            "rebuild it with `distilgpt2-asset build`, or pass --allow-unpinned to publish a testing model on purpose"
        )
        require_pinned(spec, content.folder, on_purpose=rebuild)


def check_digest(payload: Payload, expected: str | None) -> None:
    """--expect-digest: the model must be the very build that was verified elsewhere (CI's build job)."""
    if expected is not None and expected.strip().lower() != payload.content_digest:
        raise AssetError(
            f"{payload.path} has content sha256 {payload.content_digest}, not the expected {expected.strip()[:64]!r}: "
            "refusing to publish a model other than the one that was built and verified"
        )


def git_commit(checkout: Path) -> str:
    """HEAD of the asset checkout; else GITHUB_SHA (CI); else "unknown". Never fails."""
    try:
        result = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode == 0 and _GIT_SHA.match(result.stdout.strip()):
            return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GITHUB_SHA") or UNKNOWN_COMMIT


def publish_type(spec: AssetSpec) -> str:
    """model.yaml's `publish.type` (azureml-assets layout: asset.yaml -> extra_config)."""
    root = spec.path.parent
    asset = yaml.safe_load((root / "asset.yaml").read_text()) or {}
    extra = yaml.safe_load((root / asset.get("extra_config", "model/model.yaml")).read_text()) or {}
    return str((extra.get("publish") or {}).get("type", ""))


def build_payload(spec: AssetSpec, content: ModelContent, commit: str, scan: ScanReport) -> Payload:
    """scan: a clean model scan of exactly this content (refused otherwise), recorded as properties."""
    recorded = {
        CONTENT_PROPERTY: content.digest,
        MANIFEST_PROPERTY: json.dumps(content.files, sort_keys=True, separators=(",", ":")),
        COMMIT_PROPERTY: commit,
        **scan.evidence(content.digest, "publish"),
    }
    clashes = sorted(recorded.keys() & spec.properties.keys())
    if clashes:
        raise AssetError(f"{spec.path}: properties {clashes} are recorded by publish; remove them from spec.yaml")
    properties = {**spec.string_properties(), **recorded}
    return Payload(
        name=spec.name,
        version=spec.version,
        type=publish_type(spec),
        path=content.folder.resolve(),
        description=spec.description,
        description_source=_relative(spec.description_path, spec.path.parent),
        tags=dict(spec.string_tags()),
        properties=properties,
    )


def _relative(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


# the publishing rules ---------------------------------------------------------------------------


def metadata_update(existing: Published, payload: Payload, where: str) -> MetadataUpdate:
    """Azure's rules for a version that exists: same content and properties or refuse; tags and the
    description are replaced (a registry may refuse or silently drop a property added later)."""
    refuse_other_content(where, existing.properties.get(CONTENT_PROPERTY), payload.content_digest, payload.version)
    bump = f"bump `version` in spec.yaml (now {payload.version}) to publish"
    conflicts = [
        f"{key} {existing.properties[key]!r} -> {value!r}"
        if key in existing.properties
        else f"new property {key} {value!r}"
        for key, value in payload.properties.items()
        if key not in PROVENANCE_PROPERTIES and existing.properties.get(key) != value
    ]
    if conflicts:
        raise AssetError(f"properties of {where} cannot change ({'; '.join(conflicts)}); {bump} the new values")
    changes = [
        f"tag {k}"
        for k in sorted(payload.tags.keys() | existing.tags.keys())
        if payload.tags.get(k) != existing.tags.get(k)
    ]
    if existing.description is not None and existing.description != payload.description:
        changes.append("description")
    provenance = {k: payload.properties[k] for k in PROVENANCE_PROPERTIES if k in payload.properties}
    return MetadataUpdate(
        tags=dict(payload.tags),
        properties={**provenance, **existing.properties},  # kept as they are; provenance from the first publish
        description=payload.description,
        changes=changes,
    )


def publish_local(
    payload: Payload, spec: AssetSpec, registry: LocalRegistry, opened: tuple[ModelContent, ScanReport] | None = None
) -> Outcome:
    """The local MLflow registry: properties live as `properties/<key>` version tags.

    Under the registry's lock: of two publishes of one version at once, one creates it and the other
    finds it (unchanged, or refused for different content)."""
    where = f"{payload.name} {payload.version} in {registry.uri}"
    properties = {k: v for k, v in payload.properties.items() if k != CONTENT_PROPERTY}  # kept as CONTENT_TAG
    changes: tuple[str, ...] = ()
    with registry.locked():
        existing = registry.find(payload.name, payload.version)
        if existing is not None:
            update = metadata_update(_local_view(existing.tags), payload, where)
            properties = {k: update.properties[k] for k in properties}
            changes = tuple(update.changes)
        registration = registry.register(
            spec,
            payload.path,
            {PROPERTY_PREFIX + k: v for k, v in properties.items()},
            replace_tags=True,
            opened=opened,
        )
    where = f"{payload.name} {payload.version} as {registration.model_uri} in {registry.uri}"
    return Outcome(registration.outcome, where, changes)


def _local_view(version_tags: dict[str, str]) -> Published:
    properties = {k.removeprefix(PROPERTY_PREFIX): v for k, v in version_tags.items() if k.startswith(PROPERTY_PREFIX)}
    if CONTENT_TAG in version_tags:
        properties[CONTENT_PROPERTY] = version_tags[CONTENT_TAG]
    bookkeeping = (ASSET_VERSION_TAG, CONTENT_TAG)
    tags = {k: v for k, v in version_tags.items() if not k.startswith(PROPERTY_PREFIX) and k not in bookkeeping}
    return Published(tags, properties)


def publish_azure(payload: Payload, registry) -> Outcome:
    """An Azure ML registry (azure_ml.registry.AzureRegistry): look up the version, then create or update."""
    where = registry.model_uri(payload.name, payload.version)
    existing = registry.get(payload.name, payload.version)
    if existing is None:
        registry.create(payload)
        return Outcome(CREATED, where)
    update = metadata_update(
        Published(dict(existing.tags or {}), dict(existing.properties or {}), existing.description), payload, where
    )
    if not update.changes:
        return Outcome(UNCHANGED, where)
    registry.update(existing, update)
    return Outcome(METADATA_UPDATED, where, tuple(update.changes))


# the pipeline ---------------------------------------------------------------------------------


class ModelRegistry(Protocol):
    """Where a publish goes: the local MLflow registry (LocalTarget) or an Azure ML registry (AzureTarget)."""

    def dry_run(self, payload: Payload) -> dict[str, Any]:
        """What would be sent, as JSON-ready fields; nothing is touched."""
        ...

    def publish(self, payload: Payload, spec: AssetSpec, content: ModelContent, scan: ScanReport) -> Outcome:
        """Create the version, update its metadata, or find it unchanged; refuse other content."""
        ...


@dataclass(frozen=True)
class LocalTarget:
    uri: str | None = None  # None: MLFLOW_TRACKING_URI or the home's registry.db

    def dry_run(self, payload: Payload) -> dict[str, Any]:
        from .registry import registry_uri

        return {"registry": registry_uri(self.uri), **payload.summary()}

    def publish(self, payload: Payload, spec: AssetSpec, content: ModelContent, scan: ScanReport) -> Outcome:
        return publish_local(payload, spec, LocalRegistry(self.uri), (content, scan))


@dataclass(frozen=True)
class AzureTarget:
    registry: Any  # azure_ml.registry.AzureRegistry

    def dry_run(self, payload: Payload) -> dict[str, Any]:
        from .azure_ml.registry import UPLOAD_AS, model_entity

        # Read back from the azure.ai.ml Model entity that a real publish sends.
        entity = model_entity(payload, payload.path)
        sent = Payload(
            name=str(entity.name),
            version=str(entity.version),
            type=str(entity.type),
            path=Path(str(entity.path)),
            description=str(entity.description),
            description_source=payload.description_source,
            tags=dict(entity.tags or {}),
            properties=dict(entity.properties or {}),
        )
        return {
            "registry": f"azureml://registries/{self.registry.name}",
            "model_uri": self.registry.model_uri(payload.name, payload.version),
            "upload_as": UPLOAD_AS,
            **sent.summary(),
        }

    def publish(self, payload: Payload, spec: AssetSpec, content: ModelContent, scan: ScanReport) -> Outcome:
        return publish_azure(payload, self.registry)


def publish(
    spec: AssetSpec,
    model_dir: Callable[[], Path],
    target: ModelRegistry,
    allow_unpinned: bool = False,
    expect_digest: str | None = None,
    dry_run: bool = False,
) -> Outcome | dict[str, Any]:
    """validate -> scan -> open (hash) the model once -> payload -> the target registry; with dry_run,
    the payload as the target would receive it. model_dir: the model folder, asked for (a default
    build may be made) once the spec is valid. The opened model and its scan go all the way, so
    nothing is hashed or scanned twice (a local registry's own copy is checked, being other files)."""
    from .finetune.release import finetuned_release
    from .model_scan import scan_model

    refuse_invalid(spec)
    folder = model_dir()
    scan = scan_model(folder)  # first: it names every unsafe file, links included, without following them
    scan.require_clean("publish")
    content = open_model(Path(folder), require_manifest=True)
    release = finetuned_release(spec, content, allow_unpinned)  # a finetune: under a name of its own
    released, base_properties = release or (spec, {})
    if release is None:
        require_pinned_build(spec, content, allow_unpinned)
    payload = build_payload(released, content, git_commit(spec.path.parent), scan)
    payload = dataclasses.replace(payload, properties={**payload.properties, **base_properties})
    check_digest(payload, expect_digest)
    if dry_run:
        return target.dry_run(payload)
    return target.publish(payload, released, content, scan)

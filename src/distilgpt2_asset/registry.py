"""The local MLflow model registry (SQLite, the embedded default) holding spec.yaml's versions.

MLflow numbers versions 1, 2, 3…; the asset's own version (spec.yaml) is kept as the
`asset_version` tag, and the content digest as `content_sha256`, so that registering is
idempotent and a content change under an existing asset version is refused.

Several processes may publish or register at once: look-up and change happen under one file lock
per registry, and the registry's copies live in content-addressed folders (NAME/<sha256>) that are
made once and never replaced, so no registration deletes files another version points to.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from distilgpt2_scoring.folders import staged_folder
from distilgpt2_scoring.model_files import ModelContent, ModelFilesError, open_model

from .errors import AssetError
from .model_scan import ScanReport, scan_model
from .paths import home
from .spec import AssetSpec

ASSET_VERSION_TAG = "asset_version"
CONTENT_TAG = "content_sha256"
PROPERTY_PREFIX = "properties/"
LOCK_FILE = ".lock"  # in the artifact root: one writer at a time per registry


def registry_uri(explicit: str | None = None) -> str:
    """--registry-uri, else MLFLOW_TRACKING_URI, else a SQLite file under the local home."""
    if explicit:
        return explicit
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    home().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home() / 'registry.db'}"


def artifact_root(uri: str) -> Path:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).resolve().parent / "registry-artifacts"
    return home() / "registry-artifacts"


def content_digest(model_dir: Path) -> str:
    """One digest for the whole model: sha256 of its verified manifest's file list."""
    return open_model(model_dir, require_manifest=True).digest


def version_tags(spec: AssetSpec, digest: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    tags = dict(spec.string_tags())
    tags.update({PROPERTY_PREFIX + k: v for k, v in spec.string_properties().items()})
    tags.update({ASSET_VERSION_TAG: spec.version, CONTENT_TAG: digest})
    tags.update(extra or {})
    return tags


# What a registration or a publish did, in both registries: one word each.
CREATED, UNCHANGED, METADATA_UPDATED = "created", "unchanged", "metadata-updated"


def refuse_other_content(where: str, held: str | None, digest: str, version: str) -> None:
    """An existing version is only ever the same content: anything else is refused, saying what to do."""
    if held == digest:
        return
    bump = f"bump `version` in spec.yaml (now {version}) to publish the new content"
    if held is None:
        raise AssetError(f"{where} exists without a {CONTENT_TAG} property, so its content cannot be compared; {bump}")
    raise AssetError(f"{where} already holds different content (sha256 {held[:12]}… vs {digest[:12]}…); {bump}")


@dataclass(frozen=True)
class Registration:
    name: str
    asset_version: str
    mlflow_version: str
    outcome: str  # CREATED | UNCHANGED | METADATA_UPDATED
    source: str

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.mlflow_version}"


class LocalRegistry:
    def __init__(self, uri: str | None = None):
        from mlflow.tracking import MlflowClient

        self.uri = registry_uri(uri)
        self._lock_holders = 0
        with self.locked():  # the first use creates the database's tables: one process at a time
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            self.client.search_registered_models(max_results=1)

    @contextmanager
    def locked(self):
        """Hold the registry's file lock (re-entrant in this object): what is looked up stays true until
        the change is made, whatever other processes do. Closing the file releases it, even on a crash."""
        if self._lock_holders == 0:
            self._lock_file = _acquire(artifact_root(self.uri) / LOCK_FILE)
        self._lock_holders += 1
        try:
            yield
        finally:
            self._lock_holders -= 1
            if self._lock_holders == 0:
                self._lock_file.close()

    def find(self, name: str, asset_version: str):
        """The MLflow model version registered for an asset version, or None."""
        found = self.client.search_model_versions(f"name = '{name}' and tag.{ASSET_VERSION_TAG} = '{asset_version}'")
        return found[0] if found else None

    def register(
        self,
        spec: AssetSpec,
        model_dir: Path,
        extra_tags: dict[str, str] | None = None,
        replace_tags: bool = False,
        opened: tuple[ModelContent, ScanReport] | None = None,
    ) -> Registration:
        """Create the version, or update its tags if the content is the same; refuse other content.

        The folder must scan clean (model_scan); the scan's evidence is kept as `properties/` tags.

        replace_tags: also delete tags the version holds that are no longer wanted (Azure's
        publisher replaces tags the same way); by default other tags are left alone.
        opened: the model already opened (hashed) and scanned by the caller (publish), not done again.
        """
        content, scan = opened or (open_model(Path(model_dir), require_manifest=True), None)
        model_dir, digest = content.folder, content.digest
        evidence = (scan or scan_model(model_dir)).evidence(digest, "register it")
        tags = version_tags(
            spec, digest, {**{PROPERTY_PREFIX + k: v for k, v in evidence.items()}, **(extra_tags or {})}
        )
        with self.locked():
            existing = self.find(spec.name, spec.version)
            if existing is not None:
                return self._update_existing(spec, existing, tags, digest, replace_tags)
            return self._create(spec, model_dir, tags, digest)

    def _update_existing(
        self, spec: AssetSpec, existing, tags: dict[str, str], digest: str, replace_tags: bool
    ) -> Registration:
        refuse_other_content(
            f"{spec.name} {spec.version} in {self.uri}", existing.tags.get(CONTENT_TAG), digest, spec.version
        )
        changed = {k: v for k, v in tags.items() if existing.tags.get(k) != v}
        stale = sorted(existing.tags.keys() - tags.keys()) if replace_tags else []
        for key, value in changed.items():
            self.client.set_model_version_tag(spec.name, existing.version, key, value)
        for key in stale:
            self.client.delete_model_version_tag(spec.name, existing.version, key)
        outcome = METADATA_UPDATED if changed or stale else UNCHANGED
        return Registration(spec.name, spec.version, str(existing.version), outcome, existing.source)

    def _create(self, spec: AssetSpec, model_dir: Path, tags: dict[str, str], digest: str) -> Registration:
        # The version is created with all its tags in one call, after its files are in place: an
        # interruption leaves no half-made version, and only files this call stored are removed.
        target = artifact_root(self.uri) / spec.name / digest
        stored_here = not target.exists()
        if stored_here:
            _store_copy(model_dir, target, digest)
        elif not _holds(target, digest):
            raise AssetError(f"{target} does not hold the content its name promises; the registry's files were changed")
        try:
            if not self.client.search_registered_models(f"name = '{spec.name}'"):
                self.client.create_registered_model(spec.name, description=spec.description)
            created = self.client.create_model_version(
                spec.name, source=str(target), tags=tags, description=f"{spec.name} {spec.version}"
            )
        except BaseException:
            if stored_here:
                shutil.rmtree(target, ignore_errors=True)
            raise
        return Registration(spec.name, spec.version, str(created.version), CREATED, str(target))


def _acquire(path: Path):
    """The open lock file, exclusively locked (waiting, and saying so, while another process holds it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")
    except OSError as exc:
        raise AssetError(f"cannot open the registry's lock file {path}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another process using the registry ({path})", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def _store_copy(model_dir: Path, target: Path, digest: str) -> None:
    """Copy model_dir to target (staged, checked against digest, then renamed into place)."""
    with staged_folder(target) as staging:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        if not _holds(staging, digest):
            raise AssetError(f"{model_dir} changed while it was being registered; register it again")


def _holds(folder: Path, digest: str) -> bool:
    """True if folder's files verify against its manifest and that manifest has this digest."""
    try:
        return content_digest(folder) == digest
    except ModelFilesError:
        return False

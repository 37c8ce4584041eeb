"""Microsoft's asset CI, called as libraries on the asset's release set.

The steps of azureml-assets' assets-validation workflow, each through its own package:
- `validate_assets` (azureml-assets) with the CI's flags `-n -I -C -b -t -e`: names, categories,
  the model spec's rules, asset.yaml and spec.yaml agreeing;
- `validate_model_schema` (azureml-registry-tools) with `--enforce-migration`: spec.yaml against
  Microsoft's model.schema.json, and no tag or property that belongs under `system_metadata`;
- `validate_tree` (azureml-assets): every spec.yaml beside an asset.yaml, no file over 1 MB.

They run on a copy of the release set (`AssetConfig(asset.yaml).release_paths`, what a release
carries) laid out as azureml-assets' `assets/` folder, so nothing else in the checkout is searched
or rewritten. Their log lines come back as Problems naming the checkout's files. Their minimum-SKU
check calls Azure's VM-size API and is skipped without SUBSCRIPTION_ID; validate's SKU catalog
checks (validate.py) stand in for it offline.
"""

from __future__ import annotations

import importlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import AssetError

ASSET_CONFIG = "asset.yaml"
# assets-validation.yaml: validate_assets.py -n -I -C -b -t -e
CI_FLAGS = {
    "check_names": True,
    "check_images": True,
    "check_categories": True,
    "check_build_context": True,
    "check_tests": True,
    "check_environment_version": True,
}
LOGGING_MODULES = (
    "azureml.assets.validate_assets",
    "azureml.assets.validate_tree",
    "azureml.assets.util.util",
    "azureml.registry.data.validate_model_schema",
)
_SCHEMA_SUMMARY = re.compile(r"has \d+ validation error\(s\):?$")


def release_paths(root: Path) -> list[Path]:
    """The files azureml-assets releases for the asset at root, relative to root, each once."""
    from azureml.assets import AssetConfig

    root = Path(root).resolve()
    try:
        found = AssetConfig(root / ASSET_CONFIG).release_paths
    except Exception as exc:  # ValidationException, a missing or unreadable file
        raise AssetError(f"{root / ASSET_CONFIG}: {_one_line(exc)}") from None
    relative = []
    for path in found:
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(root):
            raise AssetError(f"{root / ASSET_CONFIG}: the release set reaches outside the asset: {path}")
        relative.append(resolved.relative_to(root))
    return sorted(set(relative))


def asset_ci_problems(root: Path) -> list[tuple[str, str]]:
    """(rule, message) for everything Microsoft's validators report on the asset at root."""
    root = Path(root).resolve()
    try:
        files = release_paths(root)
    except AssetError as exc:
        return [("asset-release-set", str(exc))]
    with tempfile.TemporaryDirectory(prefix="asset-ci-") as staging:
        assets_dir = Path(staging) / "assets"
        asset_dir = assets_dir / root.name
        for relative in files:
            (asset_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, asset_dir / relative)
        problems = []
        for rule, validator in _validators():
            for message in _run(validator, assets_dir):
                problems.append((rule, message.replace(str(asset_dir), str(root))))
        return problems


def _validators() -> list[tuple[str, Callable[[Path], bool]]]:
    from azureml.assets.validate_assets import validate_assets
    from azureml.assets.validate_tree import validate_tree
    from azureml.registry.data import validate_model_schema as schema

    return [
        ("asset-ci", lambda d: validate_assets([d], ASSET_CONFIG, **CI_FLAGS)),
        (
            "asset-schema",
            lambda d: schema.validate_model_schema(
                [d], Path(schema.__file__).parent / "model.schema.json", ASSET_CONFIG, enforce_migration=True
            ),
        ),
        ("asset-tree", lambda d: validate_tree([d])),
    ]


def _run(validator: Callable[[Path], bool], assets_dir: Path) -> list[str]:
    with _collected_log() as log:
        try:
            passed = validator(assets_dir)
        except Exception as exc:  # a validator that stops on a file it cannot read
            log.errors.append(_one_line(exc))
            passed = False
    if not passed and not log.errors:
        log.errors.append("failed without naming a problem")
    return log.errors


class _CollectingLogger:
    """Stands in for azureml.assets.util.logger: errors become messages; schema errors, which the
    schema validator prints in detail after a one-line summary, become one message each."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def log_error(self, message: str, title: str | None = None) -> None:
        text = _one_line(message).lstrip("‼️ ").strip()
        if not _SCHEMA_SUMMARY.search(text):
            self.errors.append(text)

    def print(self, message: str) -> None:
        text = str(message)
        if "is invalid at path" in text:
            self.errors.append(_one_line(text).lstrip("⚠️ ").rstrip(":"))
        elif text.startswith("  Error:") and self.errors:
            self.errors[-1] += f": {text.strip().removeprefix('Error: ')}"

    def log_warning(self, message: str, title: str | None = None) -> None:
        """Warnings (no SUBSCRIPTION_ID, a deprecated SHA property) do not fail Microsoft's CI."""

    def log_debug(self, message: str, title: str | None = None) -> None:
        pass

    def start_group(self, title: str) -> None:
        pass

    def end_group(self) -> None:
        pass

    def set_output(self, name: str, value: str) -> None:
        pass


@contextmanager
def _collected_log() -> Iterator[_CollectingLogger]:
    """Each validator module logs through its own reference to azureml.assets' logger."""
    modules = [importlib.import_module(name) for name in LOGGING_MODULES]
    collector = _CollectingLogger()
    saved = [vars(module)["logger"] for module in modules]
    for module in modules:
        vars(module)["logger"] = collector
    try:
        yield collector
    finally:
        for module, logger in zip(modules, saved, strict=True):
            vars(module)["logger"] = logger


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())[:600]

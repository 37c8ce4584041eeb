"""Shared by the publish tests: a throwaway asset checkout, spec edits, changed models, the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from distilgpt2_asset.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_asset_root(root: Path) -> Path:
    """spec.yaml, asset.yaml and model/ copied: spec edits and other helpers' jobs/ stay apart."""
    root.mkdir(parents=True)
    for name in ("spec.yaml", "asset.yaml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "model", root / "model")
    return root


def edit_spec(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = root / "spec.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def changed_copy(model: Path, target: Path, mlmodel_metadata: dict[str, str] | None = None) -> Path:
    """A copy with other content (an edited model card, or MLmodel metadata), manifest rewritten."""
    from distilgpt2_scoring.model_files import write_manifest

    shutil.copytree(model, target)
    if mlmodel_metadata is None:
        with open(target / "model_card.md", "a") as card:
            card.write("\nDifferent content.\n")
    else:
        mlmodel = yaml.safe_load((target / "MLmodel").read_text())
        mlmodel["metadata"].update(mlmodel_metadata)
        (target / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=True))
    write_manifest(target)
    return target


def publish(capsys, *args: str) -> tuple[int, str, str]:
    """Run `distilgpt2-asset publish ARGS` in-process: (exit code, stdout, stderr)."""
    code = main(["publish", *args])
    out, err = capsys.readouterr()
    return code, out, err

"""Where things live: the asset checkout (spec.yaml and friends) and the local working home."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
TOKENIZER_DIR = PACKAGE_DATA / "gpt2-tokenizer"


def asset_root() -> Path:
    """The checkout holding spec.yaml: DISTILGPT2_ASSET_ROOT, else the repo this package sits in."""
    override = os.environ.get("DISTILGPT2_ASSET_ROOT")
    if override:
        return Path(override).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "spec.yaml").is_file() and (parent / "scoring").is_dir():
            return parent
    return Path.cwd()


def home() -> Path:
    """Local state (registry database, built models, caches): DISTILGPT2_ASSET_HOME or ~/.distilgpt2-asset."""
    return Path(os.environ.get("DISTILGPT2_ASSET_HOME", Path.home() / ".distilgpt2-asset")).resolve()


def default_build_dir() -> Path:
    return home() / "models"


def scoring_dir() -> Path:
    return asset_root() / "scoring"

"""Engine files made from a model at start-up, cached under the model's verified content digest.

A model folder built by `distilgpt2-asset build` already carries its OpenVINO model; Microsoft's
published folder, and older builds, do not, so the first start makes it here (and every other
conversion an engine needs). The cache is trusted without the model's own manifest, so it is
private: its folder is 0700 and must belong to the user the server runs as. Each entry:
- is keyed by the model's content digest (verified when the model was opened) and the tools'
  versions, so other content or another tool version never reads a stale entry;
- is made by one process at a time (a file lock): two workers or two servers starting together
  convert once, and the second waits for the first's entry instead of deleting it;
- is written to a staging folder with its own sha256 manifest and renamed into place; a damaged
  entry (its manifest fails) is made again.
Conversions run in a subprocess (engines.convert), so the serving process never imports torch.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..folders import staged_folder
from ..model_files import ModelFilesError, verify_manifest, write_manifest

logger = logging.getLogger(__name__)
_SCORING_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the distilgpt2_scoring package


def private_folder(path: Path) -> Path:
    """Create path as 0700 if missing; refuse one that another user owns or others can write."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid():
        raise ModelFilesError(
            f"engine cache {path} belongs to uid {info.st_uid}, not to this server's uid {os.getuid()}"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)  # ours, but readable or writable by others: close it before trusting it
    return path


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_conversion(cache_dir: Path, key: str, kind: str, *sources: Path) -> Path:
    """The cache entry `key`, made by `python -m distilgpt2_scoring.engines.convert kind sources... OUT` if
    missing or damaged. Returns the verified entry's folder."""
    root = private_folder(cache_dir)
    target = root / key
    with _locked(root / f"{key}.lock"):
        if target.is_dir():
            try:
                verify_manifest(target)
                return target
            except ModelFilesError as exc:
                logger.warning("engine cache entry is damaged, making it again: %s", exc)
                shutil.rmtree(target)
        started = time.perf_counter()
        logger.info("converting for the %s engine files: %s -> %s", kind, ", ".join(map(str, sources)), target)
        with staged_folder(target, make=False) as staging:  # the converters make their folder themselves
            convert_in_subprocess(kind, [*sources, staging])
            write_manifest(staging)
        logger.info("converted in %.1f s", time.perf_counter() - started)
    return target


def convert_in_subprocess(kind: str, paths: list[Path]) -> None:
    """`python -m distilgpt2_scoring.engines.convert kind paths...` (a fresh process: no torch in
    the server, and the same input gives byte-identical files, which a second export inside one
    process does not, since OpenVINO numbers its nodes per process)."""
    command = [sys.executable, "-m", "distilgpt2_scoring.engines.convert", kind, *map(str, paths)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SCORING_ROOT), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise ModelFilesError(f"the {kind} conversion failed: {done.stderr.strip()[-2000:]}")

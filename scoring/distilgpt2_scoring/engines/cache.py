"""Engine files made from a model at start-up, cached under the model's verified content digest.

A model folder built by `distilgpt2-asset build` already carries its OpenVINO model; Microsoft's
published folder, and older builds, do not, so the first start makes it here (and every other
conversion an engine needs). The cache is trusted without the model's own manifest, so only what
this user made is trusted: the cache folder and each entry must be real folders (never a symlink),
belong to the user the server runs as and be 0700, and every file in an entry must be ours and
writable by no one else. Anything else is refused, never tightened into trust (a folder once open
to others may hold what they planted). Each entry:
- is keyed by the model's content digest (verified when the model was opened) and the tools'
  versions, so other content or another tool version never reads a stale entry;
- is bound to its sources: it records the sha256 of the files it was made from, and is used only
  while they still hash the same (a pinned model serves nothing made from other files);
- is made by one process at a time (a file lock): two workers or two servers starting together
  convert once, and the second waits for the first's entry instead of deleting it;
- is written to a staging folder with its own sha256 manifest and renamed into place; a damaged
  entry (its manifest fails) is made again.
Conversions run in a subprocess (engines.convert), so the serving process never imports torch.
"""

from __future__ import annotations

import fcntl
import json
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
from ..model_files import (
    ModelFilesError,
    compute_manifest,
    manifest_digest,
    sha256_file,
    verify_manifest,
    write_manifest,
)

logger = logging.getLogger(__name__)
_SCORING_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the distilgpt2_scoring package


ORIGIN_NAME = "origin.json"


def private_folder(path: Path) -> Path:
    """Create path as 0700 if missing; refuse one that is a symlink, another user's, or open to others."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    _require_ours(path, "engine cache")
    return path


def _require_ours(path: Path, what: str) -> None:
    """path is a real folder of this uid that only this uid can read, write or enter."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise ModelFilesError(f"{what} {path} is {kind}; refusing to use it")
    if info.st_uid != os.getuid():
        raise ModelFilesError(f"{what} {path} belongs to uid {info.st_uid}, not to this server's uid {os.getuid()}")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ModelFilesError(
            f"{what} {path} has mode {stat.S_IMODE(info.st_mode):o}, not 700: others could have written to it; "
            "remove it (it is made again) or point TEXTGEN_CACHE_DIR at a new folder"
        )


def _require_trusted_entry(entry: Path) -> None:
    """The entry and everything in it were made by this uid and writable by no one else."""
    _require_ours(entry, "engine cache entry")
    for parent, folders, names in os.walk(entry):
        for name in folders + names:
            path = Path(parent, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode) or not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                raise ModelFilesError(f"engine cache entry {entry} holds {path}, not a regular file; refusing it")
            if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o022:
                raise ModelFilesError(
                    f"engine cache entry {entry} holds {path}, owned by uid {info.st_uid} with mode "
                    f"{stat.S_IMODE(info.st_mode):o}: not made by this server; refusing it"
                )


def sources_sha256(sources: tuple[Path, ...]) -> list[str]:
    """What an entry is made from: the digest of each source in order (a folder's file list, or a file)."""
    return [manifest_digest(compute_manifest(source)) if source.is_dir() else sha256_file(source) for source in sources]


def _origin_problem(entry: Path, key: str, sources: list[str]) -> str | None:
    try:
        origin = json.loads((entry / ORIGIN_NAME).read_text())
    except (OSError, ValueError) as exc:
        return f"no readable {ORIGIN_NAME} ({type(exc).__name__})"
    if origin != {"key": key, "sources": sources}:
        return "made from other files than its sources hold now"
    return None


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    descriptor = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def cached_conversion(cache_dir: Path, key: str, kind: str, *sources: Path) -> Path:
    """The cache entry `key`, made by `python -m distilgpt2_scoring.engines.convert kind sources... OUT` if
    missing, damaged or made from other files. Returns the verified entry's folder; refuses (ModelFilesError)
    a cache folder or entry this server did not make."""
    root = private_folder(cache_dir)
    target = root / key
    made_from = sources_sha256(sources)
    with _locked(root / f"{key}.lock"):
        if os.path.lexists(target):
            _require_trusted_entry(target)
            try:
                verify_manifest(target)
                problem = _origin_problem(target, key, made_from)
            except ModelFilesError as exc:
                problem = str(exc)
            if problem is None:
                return target
            logger.warning("engine cache entry %s is damaged, making it again: %s", target, problem)
            shutil.rmtree(target)
        started = time.perf_counter()
        logger.info("converting for the %s engine files: %s -> %s", kind, ", ".join(map(str, sources)), target)
        with staged_folder(target, make=False) as staging:  # the converters make their folder themselves
            convert_in_subprocess(kind, [*sources, staging])
            (staging / ORIGIN_NAME).write_text(json.dumps({"key": key, "sources": made_from}, sort_keys=True) + "\n")
            write_manifest(staging)
            os.chmod(staging, 0o700)  # the folder this process just made, closed before it is renamed into place
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

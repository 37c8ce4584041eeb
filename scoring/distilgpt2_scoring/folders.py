"""Folders written whole or not at all: staged beside their target, renamed into place at the end.

Every writer of a model folder, engine cache entry, checkpoint or report uses this one helper, so
that an interruption never leaves a half-written folder where a finished one is expected.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(target: Path, make: bool = True) -> Iterator[Path]:
    """A staging folder beside target (same file system), renamed onto target when the block ends
    without an error and removed when it raises. A target that exists is replaced only once the new
    one is complete. make=False hands over a path that does not exist yet, for writers that insist on
    creating their output folder themselves."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    if not make:
        staging.rmdir()
    try:
        yield staging
        if target.exists():
            previous = target.with_name(f".{target.name}.previous-{os.getpid()}")
            target.rename(previous)
            staging.rename(target)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

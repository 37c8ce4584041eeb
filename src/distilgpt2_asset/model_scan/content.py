"""What a file is, told by its bytes and never by its name: pickles, archives, NumPy, HDF5, executables.

A pickle is recognised by replaying its opcodes' stack effects (pickletools; nothing is loaded):
bytes are a pickle when, with every opcode valid and its operands on the stack, they reach an
import (GLOBAL, STACK_GLOBAL, INST: everything a pickle calls is looked up by one of those) or
consist of whole pickles. Text and raw tensor data (an OpenVINO .bin) fail within a few bytes; a
pickle cut short after an import still counts, because the unpickler would already have run it.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .findings import Finding, Severity

WINDOW = 1 << 20  # bytes read to tell what a file is
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_EXECUTABLE_MAGIC = {
    b"#!": "a script (#! line)",
    b"\x7fELF": "an ELF executable or shared library",
    b"MZ": "a Windows executable",
    b"\xcf\xfa\xed\xfe": "a Mach-O executable",
    b"\xca\xfe\xba\xbe": "a Mach-O universal binary",
}
# torch.save's legacy (non-zip) format starts with a pickled magic number.
_LEGACY_TORCH = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
# The opcodes through which a pickle reaches code: everything it can call is looked up by them.
_IMPORTS = {"GLOBAL", "STACK_GLOBAL", "INST"}
# Extension codes need copyreg's registry, empty in a fresh interpreter: the unpickler fails on them.
_UNLOADABLE = {"EXT1", "EXT2", "EXT4"}
_PROTO_HEADER = re.compile(rb"\x80[\x02-\x05]")
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_RUNS_CODE = "loading it can run arbitrary code; weights must be safetensors"


def is_pickle(data: bytes | BinaryIO) -> bool:
    """True when data (bytes, or a stream read from its position on) is a pickle: it reaches an import
    with every opcode before it valid, or it is made of whole pickles (the first one headed by PROTO,
    or up to its last byte). A PROTO-headed pickle (protocol 2+) is told by its first WINDOW bytes
    (a big one still valid where the window cuts it off counts); one without PROTO (protocols 0
    and 1) is replayed to its end, however far into the file its import comes."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    start = stream.tell()
    proto = bool(_PROTO_HEADER.match(stream.read(2)))
    stream.seek(start)
    if proto:
        stream, start = io.BytesIO(stream.read(WINDOW)), 0
    first = True
    while True:
        try:
            outcome = _replay(stream)
        except ValueError:
            return proto and stream.tell() - start >= WINDOW
        if outcome != "stop":
            return outcome == "import"
        if (first and proto) or _at_end(stream):
            return True
        first = False


def _at_end(stream: BinaryIO) -> bool:
    here = stream.tell()
    ended = stream.read(1) == b""
    stream.seek(here)
    return ended


def _replay(stream: BinaryIO) -> str:
    """Replay one pickle's stack effects: "import", "stop", or "invalid" (a missing operand)."""
    frames: list[list[str]] = [[]]  # stack items (by kind) above each MARK: the unpickler's metastack
    memo: set[int] = set()
    for opcode, arg, _ in pickletools.genops(stream):
        if opcode.name in _UNLOADABLE or (
            opcode.name == "PROTO" and isinstance(arg, int) and arg > pickle.HIGHEST_PROTOCOL
        ):
            return "invalid"
        if opcode.name in ("GET", "BINGET", "LONG_BINGET") and arg not in memo:
            return "invalid"
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            memo.add(len(memo) if arg is None else arg)
        if opcode.name == "STACK_GLOBAL" and not all(kind in ("str", "any") for kind in frames[-1][-2:]):
            return "invalid"
        if not _apply(opcode, frames):
            return "invalid"
        if opcode.name in ("GLOBAL", "INST") and not all(_DOTTED_NAME.match(part) for part in str(arg).split(" ")):
            return "invalid"
        if opcode.name in _IMPORTS:
            return "import"
    return "stop"


def _apply(opcode, frames: list[list[str]]) -> bool:
    """Apply an opcode's stack effect; False when its operands are not there."""
    before = opcode.stack_before
    if pickletools.markobject in before:
        at = before.index(pickletools.markobject)
        inside = [kind for kind in before[at + 1 :] if kind is not pickletools.stackslice]
        if len(frames) < 2 or len(frames[-1]) < len(inside):
            return False
        frames.pop()
        needed = at
    else:
        needed = len(before)
    if len(frames[-1]) < needed:
        return False
    del frames[-1][len(frames[-1]) - needed :]
    if opcode.name == "MARK":
        frames.append([])
    else:
        frames[-1] += [kind.name for kind in opcode.stack_after]
    return True


def sniff(stream: BinaryIO) -> str | None:
    """ "pickle", "zip", "numpy", "hdf5", "executable" or None, from a stream's first bytes (position kept)."""
    start = stream.tell()
    head = stream.read(WINDOW)
    stream.seek(start)
    try:
        return _kind(head, stream)
    finally:
        stream.seek(start)


def _kind(head: bytes, stream: BinaryIO) -> str | None:
    """What the bytes are; head: the stream's first WINDOW bytes (the stream is read on for a pickle)."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head.startswith(np.lib.format.MAGIC_PREFIX):
        return "numpy"
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if any(head.startswith(magic) for magic in _EXECUTABLE_MAGIC):
        return "executable"
    if is_pickle(stream):
        return "pickle"
    return None


def content_findings(relative: str, path: Path) -> list[Finding]:
    """Pickle-capable content and executables, whatever the file is called."""
    with open(path, "rb") as handle:
        head = handle.read(WINDOW)
        handle.seek(0)
        kind = _kind(head, handle)
    findings = []
    danger = _pickle_capable(kind, head, path)
    if danger:
        findings.append(Finding(relative, "pickle", Severity.HIGH, f"{danger}: {_RUNS_CODE}"))
    if kind == "executable":
        what = next(text for magic, text in _EXECUTABLE_MAGIC.items() if head.startswith(magic))
        findings.append(Finding(relative, "executable", Severity.HIGH, f"{what}: a model folder holds no programs"))
    mode = os.stat(path).st_mode
    if mode & 0o111:
        findings.append(
            Finding(relative, "executable", Severity.HIGH, f"executable permission bits set (mode {mode & 0o777:o})")
        )
    return findings


def _pickle_capable(kind: str | None, head: bytes, path: Path) -> str | None:
    """What makes the file able to run code when loaded, or None."""
    if kind == "pickle":
        return (
            "a PyTorch checkpoint in the legacy torch.save format (pickles)"
            if head.startswith(_LEGACY_TORCH)
            else "a pickle"
        )
    if kind == "zip":
        return _zip_description(path)
    if kind == "numpy":
        return _numpy_objects(head)
    if kind == "hdf5" and _has_keras_lambda(path):
        return "a Keras HDF5 model with a Lambda layer (marshalled Python code)"
    return None


def _zip_description(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "a zip archive that cannot be read (it may hold pickles)"
    if any(name.endswith(".pkl") for name in names):
        return "a PyTorch checkpoint (torch.save: a zip of pickles)"
    if names and all(name.endswith(".npy") for name in names):
        return "a NumPy .npz archive (its object arrays are pickles)"
    return "a zip archive (it may hold pickles, e.g. NumPy .npz or Keras .keras)"


def _numpy_objects(head: bytes) -> str | None:
    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _, _, dtype = header(stream)
    except ValueError:
        return "a NumPy file whose header cannot be read (it may hold a pickle)"
    return "a NumPy array of Python objects (pickled)" if dtype.hasobject else None


def _has_keras_lambda(path: Path) -> bool:
    """Keras keeps its model config as JSON text in the HDF5 file; a Lambda layer carries code."""
    needle = re.compile(rb'"class_name":\s*"Lambda"')
    overlap = b""
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(WINDOW), b""):
            if needle.search(overlap + chunk):
                return True
            overlap = chunk[-64:]
    return False

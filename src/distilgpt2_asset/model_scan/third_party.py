"""ProtectAI's modelscan, run as a library over each file the walk found (never through a link).

modelscan chooses its scanners by file extension. A middleware placed after its own makes the
pickle family (pickle, PyTorch, NumPy) follow the bytes instead: a pickle renamed *.safetensors is
disassembled as the pickle it is, and an OpenVINO weights file named *.bin is not parsed as a
PyTorch pickle. Zip archives (PyTorch checkpoints) are opened by modelscan itself, member by member.
"""

from __future__ import annotations

import copy
import logging
from importlib.metadata import version
from pathlib import Path
from typing import Any

from modelscan.middlewares.middleware import MiddlewareBase
from modelscan.modelscan import ModelScan
from modelscan.settings import DEFAULT_SETTINGS, SupportedModelFormats

from .content import sniff
from .findings import Finding, ModelscanRun, Severity

# Its findings and errors come back in the report; its log lines would only repeat them.
logging.getLogger("modelscan").addHandler(logging.NullHandler())
logging.getLogger("modelscan").propagate = False

_PICKLE_FAMILY = {
    SupportedModelFormats.PICKLE.value,
    SupportedModelFormats.PYTORCH.value,
    SupportedModelFormats.NUMPY.value,
}
_FORMATS_BY_CONTENT: dict[str | None, list[SupportedModelFormats]] = {
    "pickle": [SupportedModelFormats.PICKLE],
    "numpy": [SupportedModelFormats.NUMPY],
}


class FormatsByContent(MiddlewareBase):
    """The pickle family's formats from the file's bytes; other formats (TensorFlow, Keras) as modelscan set them."""

    def __call__(self, model, call_next) -> None:
        kept = [fmt for fmt in model.get_context("formats") or [] if fmt.value not in _PICKLE_FAMILY]
        model.set_context("formats", kept + _FORMATS_BY_CONTENT.get(sniff(model.get_stream()), []))
        call_next(model)


def modelscan_settings() -> dict[str, Any]:
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    settings["middlewares"][f"{__name__}.{FormatsByContent.__name__}"] = {}
    return settings


def run_modelscan(files: dict[str, Path]) -> tuple[ModelscanRun, list[Finding]]:
    """modelscan over every file: its issues (with its severities), its errors (MEDIUM: unscanned), what it skipped."""
    scanner = ModelScan(settings=modelscan_settings())
    findings: list[Finding] = []
    scanned: list[str] = []
    skipped: list[tuple[str, str]] = []
    for relative, path in files.items():
        result = scanner.scan(path)
        named = _namer(relative, path)
        for issue in result["issues"]:
            findings.append(
                Finding(named(issue["source"]), "modelscan", Severity[issue["severity"]], issue["description"])
            )
        for error in result["errors"]:
            findings.append(
                Finding(
                    named(error.get("source", path.name)),
                    "modelscan",
                    Severity.MEDIUM,
                    f"modelscan could not scan it ({error['category']}): {error['description']}",
                )
            )
        scanned += [named(source) for source in result["summary"]["scanned"].get("scanned_files", [])]
        skipped += [
            (named(item["source"]), item["description"]) for item in result["summary"]["skipped"]["skipped_files"]
        ]
    return ModelscanRun(version("modelscan"), tuple(scanned), tuple(skipped)), findings


def _namer(relative: str, path: Path):
    """modelscan names "file" or "file:member" relative to the file's folder (a hub blob's name is its
    hash): the same under the file's path in the scanned folder."""

    def named(source: str) -> str:
        return relative + source[len(path.name) :] if source.startswith(path.name) else relative

    return named

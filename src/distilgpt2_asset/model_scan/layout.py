"""The files a model folder may hold, as small declarative tables, and the walk that lists a folder.

A file is either matched by an entry of its layout or a finding. `kind` says which rule reads the
file's content (every file also goes through the content, custom-code and modelscan checks):
  safetensors  weights: header, tensor names, shapes and dtypes against config.json
  config       the model's config.json (architecture for the weights check)
  tokenizer    vocabulary and merges against the real GPT-2 tokenizer
  mlmodel      MLflow's MLmodel (no code, no custom flavors)
  environment  MLflow's conda.yaml, python_env.yaml, requirements.txt: only this project's pinned packages
  data         any other file of the model (JSON, text, raw tensor data); no pickles, no executables
  extra        not part of the model (documentation, metrics), allowed by name
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from distilgpt2_scoring.model_files import MANIFEST_NAME

from .findings import Finding, Severity


@dataclass(frozen=True)
class Entry:
    pattern: str  # relative POSIX path; `*` never crosses a folder
    kind: str
    required: bool = False

    def matches(self, relative: str) -> bool:
        return relative.count("/") == self.pattern.count("/") and fnmatchcase(relative, self.pattern)


@dataclass(frozen=True)
class Layout:
    name: str
    manifest: bool  # a sha256 manifest must cover every file
    entries: tuple[Entry, ...]

    def entry_for(self, relative: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.matches(relative)), None)

    @property
    def config(self) -> str:
        """Where the model's config.json is (the safetensors files lie beside it)."""
        return next(entry.pattern for entry in self.entries if entry.kind == "config")


_TOKENIZER = (
    Entry("tokenizer.json", "tokenizer"),
    Entry("vocab.json", "tokenizer"),
    Entry("merges.txt", "tokenizer"),
    Entry("tokenizer_config.json", "data"),
    Entry("special_tokens_map.json", "data"),
    Entry("added_tokens.json", "data"),
)
_WEIGHTS = (
    Entry("config.json", "config", required=True),
    Entry("*.safetensors", "safetensors", required=True),
    Entry("model.safetensors.index.json", "data"),
    Entry("generation_config.json", "data"),
)


def _under(folder: str, entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
    return tuple(Entry(f"{folder}/{e.pattern}", e.kind, e.required) for e in entries)


# What mlflow.transformers.save_model writes (ours and the published asset's), plus what our
# build and finetune add.
MLFLOW = Layout(
    name="mlflow",
    manifest=True,
    entries=(
        Entry("MLmodel", "mlmodel", required=True),
        Entry(MANIFEST_NAME, "data", required=True),
        Entry("conda.yaml", "environment"),
        Entry("python_env.yaml", "environment"),
        Entry("requirements.txt", "environment"),
        Entry("input_example.json", "data"),
        Entry("serving_input_example.json", "data"),
        Entry("LICENSE.txt", "extra"),
        Entry("model_card.md", "extra"),
        Entry("model_card_data.yaml", "extra"),
        *_under("model", _WEIGHTS),
        *_under("components/tokenizer", _TOKENIZER),
        # OpenVINO int8 engine: IR graph + raw tensor data (not a pickle), its small JSON files.
        Entry("engines/openvino-int8/openvino_model.xml", "data"),
        Entry("engines/openvino-int8/openvino_model.bin", "data"),
        Entry("engines/openvino-int8/*.json", "data"),
        Entry("metrics.json", "extra"),  # finetune.METRICS_FILE (not imported: it pulls in torch)
        Entry("training-curve.png", "extra"),  # finetune.CURVE_FILE
    ),
)

# A Hugging Face snapshot: what build reads.
HUGGINGFACE = Layout(
    name="huggingface",
    manifest=False,
    entries=(
        *_WEIGHTS,
        *_TOKENIZER,
        Entry("README.md", "extra"),
        Entry("LICENSE*", "extra"),
        Entry("testing_model.json", "extra"),  # written by `distilgpt2-asset testing-model`
    ),
)


@dataclass(frozen=True)
class Walk:
    files: dict[str, Path]  # relative POSIX path -> the regular file to read
    findings: tuple[Finding, ...]  # symlinks, special files


def walk(folder: Path) -> Walk:
    """Every entry under folder, never following a link; a link is a finding unless it is the
    Hugging Face cache's own (snapshots/<rev>/<file> -> blobs/<hash>), whose target is then read."""
    files: dict[str, Path] = {}
    findings: list[Finding] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs + names):
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                target = _hub_cache_blob(folder, path)
                if target is None:
                    findings.append(
                        Finding(
                            relative,
                            "symlink",
                            Severity.HIGH,
                            f"a symlink to {os.readlink(path)}: a model folder holds its own files",
                        )
                    )
                else:
                    files[relative] = target
            elif stat.S_ISREG(mode):
                files[relative] = path
            elif not stat.S_ISDIR(mode):
                findings.append(
                    Finding(relative, "layout", Severity.HIGH, "not a regular file (a device, socket or pipe)")
                )
    return Walk(dict(sorted(files.items())), tuple(findings))


def _hub_cache_blob(folder: Path, link: Path) -> Path | None:
    if folder.parent.name != "snapshots" or link.parent != folder:
        return None
    blobs = (folder.parent.parent / "blobs").resolve()
    target = link.resolve()
    return target if target.parent == blobs and target.is_file() and not target.is_symlink() else None


def check_layout(layout: Layout, files: dict[str, Path]) -> list[Finding]:
    findings = [
        Finding(relative, "layout", Severity.MEDIUM, f"not part of the {layout.name} layout (nor a listed extra)")
        for relative in files
        if layout.entry_for(relative) is None
    ]
    for entry in layout.entries:
        if entry.required and not any(entry.matches(relative) for relative in files):
            findings.append(
                Finding(entry.pattern, "layout", Severity.MEDIUM, f"missing: the {layout.name} layout requires it")
            )
    return findings


def files_of_kind(layout: Layout, files: dict[str, Path], kind: str) -> dict[str, Path]:
    return {
        relative: path
        for relative, path in files.items()
        if (entry := layout.entry_for(relative)) is not None and entry.kind == kind
    }

"""scan_model: modelscan plus our structural rules over one model folder (MLflow or Hugging Face layout)."""

from __future__ import annotations

from pathlib import Path

from distilgpt2_scoring.model_files import (
    MANIFEST_NAME,
    ModelFilesError,
    locate_mlflow_folder,
    read_manifest,
    sha256_file,
)

from ..errors import AssetError
from .content import content_findings
from .custom_code import check_json_configs, check_mlmodel
from .environment import check_environment_file
from .findings import Finding, ScanReport, Severity
from .layout import HUGGINGFACE, MLFLOW, Layout, check_layout, files_of_kind, walk
from .tensors import check_weights
from .third_party import run_modelscan
from .tokenizer import check_tokenizer

# Bump when a rule changes what it accepts: recorded with every scan as a tool version.
RULES_VERSION = "2"
RULES = (
    "symlink",
    "layout",
    "pickle",
    "executable",
    "safetensors",
    "custom-code",
    "tokenizer",
    "environment",
    "manifest",
    "modelscan",
)


def locate(model_dir: Path) -> tuple[Path, Layout]:
    """The model in the folder and its layout: an MLflow model (MLmodel), a Hugging Face folder
    (config.json: what build loads), or a registered model's root holding its MLflow folder (one
    level down, as the server finds it). Whatever the model folder, the scan reads all of model_dir."""
    model_dir = Path(model_dir).expanduser().resolve()
    if not model_dir.is_dir():
        raise AssetError(f"{model_dir}: no such folder")
    if (model_dir / "MLmodel").is_file():
        return model_dir, MLFLOW
    if (model_dir / "config.json").is_file():
        return model_dir, HUGGINGFACE
    try:
        return locate_mlflow_folder(model_dir), MLFLOW
    except ModelFilesError:
        pass
    raise AssetError(f"{model_dir}: neither an MLflow model (MLmodel) nor a Hugging Face model folder (config.json)")


def outside_findings(root: Path, folder: Path) -> list[Finding]:
    """Everything under root but outside the model folder it holds: named, and read for dangers."""
    if folder == root:
        return []
    inside = folder.relative_to(root).as_posix() + "/"
    walked = walk(root)
    findings = [finding for finding in walked.findings if not finding.file.startswith(inside)]
    for relative, path in walked.files.items():
        if not relative.startswith(inside):
            findings.append(
                Finding(
                    relative, "layout", Severity.MEDIUM, f"outside the model folder {inside}: not part of the model"
                )
            )
            findings += content_findings(relative, path)
    return findings


def scan_model(model_dir: Path) -> ScanReport:
    """Scan every file of the folder; the report names each problem (file, rule, severity)."""
    from distilgpt2_scoring.model_files import manifest_digest

    folder, layout = locate(model_dir)
    walked = walk(folder)
    files = walked.files
    hashes = {relative: sha256_file(path) for relative, path in files.items() if relative != MANIFEST_NAME}
    findings = [*walked.findings, *check_layout(layout, files), *outside_findings(Path(model_dir).resolve(), folder)]
    for relative, path in files.items():
        findings += content_findings(relative, path)
    findings += check_weights(layout.config, files.get(layout.config), files_of_kind(layout, files, "safetensors"))
    findings += check_json_configs(files)
    for relative, path in files_of_kind(layout, files, "mlmodel").items():
        findings += check_mlmodel(relative, path)
    findings += check_tokenizer(files_of_kind(layout, files, "tokenizer"))
    for relative, path in files_of_kind(layout, files, "environment").items():
        findings += check_environment_file(relative, path)
    if layout.manifest:
        findings += check_manifest(folder, hashes, already_reported={finding.file for finding in walked.findings})
    modelscan, modelscan_findings = run_modelscan(files)
    findings += modelscan_findings
    return ScanReport(
        folder=folder,
        layout=layout.name,
        findings=tuple(sorted(set(findings), key=lambda f: (-f.severity, f.file, f.rule, f.message))),
        content_sha256=manifest_digest(hashes),
        files=len(files),
        rules=RULES if layout.manifest else tuple(rule for rule in RULES if rule != "manifest"),
        tools={"modelscan": modelscan.version, "distilgpt2-asset-rules": RULES_VERSION},
        modelscan=modelscan,
    )


def check_manifest(folder: Path, hashes: dict[str, str], already_reported: set[str]) -> list[Finding]:
    """The sha256 manifest lists every file, with the hash it has now."""
    try:
        recorded = read_manifest(folder)
    except ModelFilesError as exc:
        return [Finding(MANIFEST_NAME, "manifest", Severity.HIGH, str(exc).split(": ", 1)[-1])]
    findings = [
        Finding(name, "manifest", Severity.HIGH, "in the manifest but not in the folder")
        for name in sorted(recorded.keys() - hashes.keys() - already_reported)
    ]
    findings += [
        Finding(
            name,
            "manifest",
            Severity.HIGH,
            f"sha256 {hashes[name][:12]}… does not match the manifest's {recorded[name][:12]}…",
        )
        for name in sorted(recorded.keys() & hashes.keys())
        if recorded[name] != hashes[name]
    ]
    findings += [
        Finding(name, "manifest", Severity.HIGH, "not in the manifest")
        for name in sorted(hashes.keys() - recorded.keys())
    ]
    return findings

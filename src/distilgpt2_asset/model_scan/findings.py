"""What a scan says: one Finding per problem (file, rule, severity), and the report of a whole folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..errors import AssetError


class Severity(IntEnum):
    """modelscan's scale; MEDIUM and above fail a scan."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


FAILING = Severity.MEDIUM

# The scan's evidence, recorded as version properties by register and publish.
VERDICT_PROPERTY = "model_scan_verdict"
TOOLS_PROPERTY = "model_scan_tools"
RULES_PROPERTY = "model_scan_rules"
DIGEST_PROPERTY = "model_scan_sha256"
SCAN_PROPERTIES = (VERDICT_PROPERTY, TOOLS_PROPERTY, RULES_PROPERTY, DIGEST_PROPERTY)
CLEAN = "clean"
FAILED = "failed"


@dataclass(frozen=True, order=True)
class Finding:
    file: str  # relative POSIX path in the folder ("" for the folder as a whole); "file:member" inside an archive
    rule: str
    severity: Severity
    message: str

    def line(self) -> str:
        return f"{self.severity.name:<8} {self.file or '.'} [{self.rule}] {self.message}"

    def as_json(self) -> dict[str, str]:
        return {"file": self.file, "rule": self.rule, "severity": self.severity.name, "message": self.message}


@dataclass(frozen=True)
class ModelscanRun:
    """ProtectAI modelscan's part of a scan: its version, the files it read and those it skipped."""

    version: str
    scanned: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (file, modelscan's reason)


@dataclass(frozen=True)
class ScanReport:
    folder: Path
    layout: str  # "mlflow" | "huggingface"
    findings: tuple[Finding, ...]
    content_sha256: str  # sha256 of {relative path: sha256} of every regular file read, as model_files.manifest_digest
    files: int
    rules: tuple[str, ...]
    tools: dict[str, str]
    modelscan: ModelscanRun

    @property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= FAILING)

    @property
    def verdict(self) -> str:
        return FAILED if self.failing else CLEAN

    def require_clean(self, action: str) -> None:
        """Raise AssetError listing every failing finding, e.g. action="build", "publish"."""
        if self.failing:
            listed = "\n".join(f"  {finding.line()}" for finding in self.failing)
            raise AssetError(
                f"the model scan of {self.folder} found {len(self.failing)} problem(s); refusing to {action}:\n{listed}"
            )

    def evidence(self, content_sha256: str, action: str) -> dict[str, str]:
        """The properties a registry records; only for a clean scan of exactly this content."""
        self.require_clean(action)
        if content_sha256 != self.content_sha256:
            raise AssetError(
                f"{self.folder} changed after it was scanned (content sha256 {self.content_sha256[:12]}… scanned, "
                f"{content_sha256[:12]}… to {action}); refusing to {action} content that was not scanned"
            )
        return {
            VERDICT_PROPERTY: self.verdict,
            TOOLS_PROPERTY: json.dumps(self.tools, sort_keys=True, separators=(",", ":")),
            RULES_PROPERTY: ",".join(self.rules),
            DIGEST_PROPERTY: self.content_sha256,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "layout": self.layout,
            "verdict": self.verdict,
            "content_sha256": self.content_sha256,
            "files": self.files,
            "tools": self.tools,
            "rules": list(self.rules),
            "findings": [finding.as_json() for finding in self.findings],
            "modelscan": {
                "version": self.modelscan.version,
                "scanned": list(self.modelscan.scanned),
                "skipped": [{"file": file, "reason": reason} for file, reason in self.modelscan.skipped],
            },
        }

    def as_text(self) -> str:
        count = f"{len(self.findings)} finding(s)" if self.findings else "no findings"
        lines = [
            f"model scan of {self.folder} ({self.layout} layout, {self.files} files): {self.verdict.upper()}, {count}"
        ]
        lines += [f"  {finding.line()}" for finding in self.findings]
        lines.append(
            f"modelscan {self.modelscan.version}: read {len(self.modelscan.scanned)} file(s) as model formats, "
            f"skipped {len(self.modelscan.skipped)} it does not read (checked by the rules below)"
        )
        lines.append(f"rules: {', '.join(self.rules)}")
        lines.append(f"content sha256: {self.content_sha256}")
        return "\n".join(lines)

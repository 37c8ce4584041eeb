"""findings: the verdict, the refusal that lists every failing finding, and the recorded evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.model_scan import Finding, ScanReport, Severity
from distilgpt2_asset.model_scan.findings import ModelscanRun


def report(*findings: Finding) -> ScanReport:
    return ScanReport(
        folder=Path("/models/m"),
        layout="mlflow",
        findings=findings,
        content_sha256="c" * 64,
        files=3,
        rules=("pickle", "modelscan"),
        tools={"modelscan": "0.8.8", "distilgpt2-asset-rules": "1"},
        modelscan=ModelscanRun("0.8.8", (), (("MLmodel", "Model Scan did not scan file"),)),
    )


LOW = Finding("model/a.bin", "modelscan", Severity.LOW, "Use of unsafe operator 'x' from module 'y'")
HIGH = Finding("model/evil.pkl", "pickle", Severity.HIGH, "a pickle: loading it can run arbitrary code")


def test_only_medium_and_above_fail_a_scan():
    assert report(LOW).verdict == "clean" and report(LOW, HIGH).verdict == "failed"
    assert report(LOW, HIGH).failing == (HIGH,)


def test_a_failing_scan_is_refused_listing_its_findings():
    with pytest.raises(AssetError) as refused:
        report(LOW, HIGH).require_clean("publish")
    assert str(refused.value) == (
        "the model scan of /models/m found 1 problem(s); refusing to publish:\n"
        "  HIGH     model/evil.pkl [pickle] a pickle: loading it can run arbitrary code"
    )


def test_the_evidence_of_a_clean_scan_names_tools_rules_verdict_and_content():
    assert report(LOW).evidence("c" * 64, "publish") == {
        "model_scan_verdict": "clean",
        "model_scan_tools": '{"distilgpt2-asset-rules":"1","modelscan":"0.8.8"}',
        "model_scan_rules": "pickle,modelscan",
        "model_scan_sha256": "c" * 64,
    }


def test_content_other_than_the_scanned_content_has_no_evidence():
    with pytest.raises(
        AssetError, match=r"changed after it was scanned .* refusing to publish content that was not scanned"
    ):
        report().evidence("d" * 64, "publish")


def test_the_json_report_lists_findings_and_what_modelscan_skipped():
    data = report(HIGH).as_json()
    assert data["verdict"] == "failed" and data["findings"] == [
        {
            "file": "model/evil.pkl",
            "rule": "pickle",
            "severity": "HIGH",
            "message": "a pickle: loading it can run arbitrary code",
        }
    ]
    assert data["modelscan"]["skipped"] == [{"file": "MLmodel", "reason": "Model Scan did not scan file"}]
    json.dumps(data)

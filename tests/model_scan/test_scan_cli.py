"""`distilgpt2-asset scan`: a text or JSON report, exit 0 when clean, 1 on a finding, 2 on bad input."""

from __future__ import annotations

import json

from distilgpt2_asset.cli import main

from .dangers import extra_executable_script


def scan(capsys, *args):
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_clean_build_reports_clean_and_exits_0(tiny_mlflow_model, capsys):
    code, out, _ = scan(capsys, "--model", str(tiny_mlflow_model))
    assert code == 0
    files = sum(
        1 for p in tiny_mlflow_model.rglob("*") if p.is_file()
    )  # every file, the manifest and the OpenVINO model included
    assert out.startswith(f"model scan of {tiny_mlflow_model} (mlflow layout, {files} files): CLEAN, no findings\n")
    assert "modelscan 0.8.8:" in out and "content sha256: " in out


def test_a_finding_exits_1_and_the_json_report_names_it(mlflow_copy, capsys):
    extra_executable_script(mlflow_copy, mlflow_copy / "model")
    code, out, _ = scan(capsys, "--model", str(mlflow_copy), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "failed"
    assert {
        "file": "postprocess.sh",
        "rule": "executable",
        "severity": "HIGH",
        "message": "executable permission bits set (mode 755)",
    } in report["findings"]


def test_without_a_build_the_default_folder_is_one_clear_line(isolated_home, capsys):
    code, out, err = scan(capsys)
    assert (code, out) == (2, "")
    assert (
        err
        == f"error: no built model at {isolated_home / 'models' / 'distilgpt2-15'}: run `distilgpt2-asset build` or "
        "pass --model DIR\n"
    )

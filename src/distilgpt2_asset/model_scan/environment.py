"""The MLflow environment files: what Azure's no-code MLflow deployment and `mlflow models serve` install.

conda.yaml, python_env.yaml and requirements.txt decide what pip and conda fetch and run when an
image is built from the model. A requirement is accepted only as `name==version` with that exact
pin among this project's runtime dependencies (pyproject.toml, as installed); anything else is a
finding: another package, another version, an index or other pip option, a URL, a VCS reference or a
local path, another conda channel or package. pip, setuptools and wheel may be named as build tools.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import yaml

from .findings import Finding, Severity

DISTRIBUTION = "distilgpt2-asset"
CONDA_CHANNELS = {"conda-forge", "defaults"}
BUILD_TOOLS = {"pip", "setuptools", "wheel"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
_BUILD_TOOL = re.compile(r"^([A-Za-z]+)(?:(?:==|<=|>=|=|<|>)[0-9][0-9.]*)?$")
_CONDA_PYTHON = re.compile(r"^python(=[0-9][0-9.]*)?$")
_INCLUDE_REQUIREMENTS = "-r requirements.txt"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def allowed_pins() -> frozenset[tuple[str, str]]:
    """(name, version) of every runtime dependency pinned with == (extras' packages excluded)."""
    pins = set()
    for requirement in requires(DISTRIBUTION) or []:
        if ";" in requirement:
            continue  # an extra's (test, notebook tooling): never installed with a model
        if match := _PIN.match(requirement.replace(" ", "")):
            pins.add((_normal(match[1]), match[2]))
    return frozenset(pins)


def check_environment_file(relative: str, path: Path) -> list[Finding]:
    """One finding per requirement, channel or field that would install something not ours."""
    try:
        text = path.read_text(encoding="utf-8")
        if relative.endswith("requirements.txt"):
            return _requirements(relative, text.splitlines())
        document = yaml.safe_load(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        return [_finding(relative, f"cannot be read ({type(exc).__name__}); pip or conda would read it their way")]
    if not isinstance(document, dict):
        return [_finding(relative, "not a mapping")]
    if relative.endswith("conda.yaml"):
        return _conda(relative, document)
    return _python_env(relative, document)


def _finding(relative: str, message: str) -> Finding:
    return Finding(relative, "environment", Severity.HIGH, message)


def _requirement(relative: str, requirement: Any) -> list[Finding]:
    text = str(requirement).strip()
    match = _PIN.match(text)
    if match is None:
        return [_finding(relative, f"{text[:200]!r}: only name==version requirements (no options, URLs or paths)")]
    if (_normal(match[1]), match[2]) not in allowed_pins():
        return [_finding(relative, f"{text!r} is not one of this project's pinned runtime packages")]
    return []


def _requirements(relative: str, lines: list[str]) -> list[Finding]:
    findings = []
    for line in lines:
        text = line.split(" #", 1)[0].strip()
        if text and not text.startswith("#"):
            findings += _requirement(relative, text)
    return findings


def _listed(relative: str, document: dict, key: str) -> list[Any]:
    value = document.get(key) or []
    return value if isinstance(value, list) else [f"{key}: {value!r}"]


def _build_tool(relative: str, requirement: Any) -> list[Finding]:
    match = _BUILD_TOOL.match(str(requirement).replace(" ", ""))
    if match is None or match[1] not in BUILD_TOOLS:
        return [_finding(relative, f"{str(requirement)[:200]!r}: only {', '.join(sorted(BUILD_TOOLS))} as build tools")]
    return []


def _conda(relative: str, document: dict) -> list[Finding]:
    findings = [
        _finding(relative, f"channel {str(channel)[:200]!r}: only {', '.join(sorted(CONDA_CHANNELS))}")
        for channel in _listed(relative, document, "channels")
        if channel not in CONDA_CHANNELS
    ]
    for dependency in _listed(relative, document, "dependencies"):
        if isinstance(dependency, dict) and set(dependency) == {"pip"} and isinstance(dependency["pip"], list):
            for requirement in dependency["pip"]:
                findings += _requirement(relative, requirement)
        elif not (isinstance(dependency, str) and _CONDA_PYTHON.match(dependency.replace(" ", ""))):
            findings += _build_tool(relative, dependency)
    return findings


def _python_env(relative: str, document: dict) -> list[Finding]:
    findings = [_build_tool(relative, tool) for tool in _listed(relative, document, "build_dependencies")]
    for dependency in _listed(relative, document, "dependencies"):
        if str(dependency).strip() != _INCLUDE_REQUIREMENTS:
            findings.append(_requirement(relative, dependency))
    return [finding for found in findings for finding in found]

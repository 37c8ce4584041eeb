"""No custom code: no config that points transformers at code shipped with the model, and an
MLmodel that loads through mlflow.transformers with no code of its own."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .findings import Finding, Severity

# Keys by which a Hugging Face config names Python code for trust_remote_code to import.
CUSTOM_CODE_KEYS = ("auto_map", "custom_pipelines")
MAX_JSON = 64 << 20
LOADER = "mlflow.transformers"
FLAVORS = {"python_function", "transformers"}


def check_json_configs(files: dict[str, Path]) -> list[Finding]:
    """Every JSON file (config.json, tokenizer_config.json, ...) with a top-level custom-code key."""
    findings = []
    for relative, path in files.items():
        if not relative.endswith(".json"):
            continue
        if path.stat().st_size > MAX_JSON:
            findings.append(
                Finding(
                    relative,
                    "custom-code",
                    Severity.MEDIUM,
                    f"over {MAX_JSON >> 20} MiB: too large to check for custom code",
                )
            )
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue  # not JSON: the content and layout rules speak for it
        if isinstance(data, dict):
            findings += [
                Finding(
                    relative,
                    "custom-code",
                    Severity.HIGH,
                    f"{key} names code shipped with the model: {json.dumps(data[key])[:200]}",
                )
                for key in CUSTOM_CODE_KEYS
                if key in data
            ]
    return findings


def check_mlmodel(relative: str, path: Path) -> list[Finding]:
    try:
        mlmodel = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        mlmodel = None
    flavors = mlmodel.get("flavors") if isinstance(mlmodel, dict) else None
    if not isinstance(flavors, dict):
        return [Finding(relative, "custom-code", Severity.HIGH, "not an MLmodel file with flavors")]
    findings = [
        Finding(
            relative,
            "custom-code",
            Severity.HIGH,
            f"flavor {name!r}: only {' and '.join(sorted(FLAVORS))} load without custom code",
        )
        for name in sorted(set(flavors) - FLAVORS)
    ]
    for name, flavor in sorted(flavors.items()):
        code = flavor.get("code") if isinstance(flavor, dict) else None
        if code is not None:
            findings.append(
                Finding(relative, "custom-code", Severity.HIGH, f"flavor {name!r} has code {code!r}; it must be null")
            )
    loader = (flavors.get("python_function") or {}).get("loader_module")
    if loader != LOADER:
        findings.append(
            Finding(
                relative, "custom-code", Severity.HIGH, f"python_function loader_module is {loader!r}, not {LOADER}"
            )
        )
    return findings

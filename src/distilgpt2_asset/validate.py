"""Whole-asset validation: Microsoft's asset CI run as libraries on the asset's release set
(asset_ci.py), our SKU catalog's rules on spec.yaml beside it, plus every Azure ML YAML loaded
with the real azure.ai.ml loaders, put through the checks azure.ai.ml runs before it submits
(what `az ml job create` and MLClient's create_or_update run), and checked against the matching
compute allow-list and the SKUs' lifecycle (model/sku_catalog.csv).

Each check returns problems as `Problem(rule, message)`; the CLI lists them all. Warnings (a SKU
the card lists that Azure has retired, a retirement announced for later) go to a separate list:
they do not make the asset invalid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .asset_ci import asset_ci_problems
from .errors import AssetError
from .sku_fitness import SkuRules, assess, online_endpoint_supports
from .sku_lifecycle import sku_status
from .skus import canonical_sku, per_field_minimum, sku_catalog
from .spec import CARD_TAGS, SCENARIOS, AssetSpec, read_yaml

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,254}$")
SHA_PATTERN = re.compile(r"^[0-9a-f]{40}$")
YAML_FOLDERS = ("jobs", "environments")
REQUIRED_TAGS = ("task", "license", "huggingface_model_id")
SHARED_COMPUTE = "system_metadata.sharedComputeCapacityEnabled"  # the card's SharedComputeCapacityEnabled


@dataclass(frozen=True)
class Problem:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


# spec.yaml rules -----------------------------------------------------------------------------


def _identity(spec: AssetSpec) -> Iterator[Problem]:
    if not NAME_PATTERN.match(spec.name):
        yield Problem("name", f"name {spec.name!r} must match {NAME_PATTERN.pattern}")
    if not spec.version.isdigit():
        yield Problem("version", f"version {spec.version!r} must be a whole number")
    for card_name, field, _form in CARD_TAGS:
        if card_name in REQUIRED_TAGS and not spec.tags.get(card_name):
            yield Problem("required-tag", f"{field} (the card's tag {card_name!r}) is missing")
    if not SHA_PATTERN.match(spec.revision):
        yield Problem("sha", f"properties.SHA {spec.revision!r} must be a 40-character commit SHA")
    if spec.field(SHARED_COMPUTE) is None:
        yield Problem("shared-compute", f"{SHARED_COMPUTE} must be set (the card's tag and property)")
    try:
        _ = spec.model_specific_defaults  # reading it validates it
    except Exception as exc:
        yield Problem("model-specific-defaults", str(exc))


def _scenario(spec: AssetSpec, scenario: str) -> Iterator[Problem]:
    allow = spec.allow_list(scenario)
    if not allow:
        return
    catalog = sku_catalog()
    duplicates = sorted({s for s in allow if allow.count(s) > 1})
    if duplicates:
        yield Problem("allow-list-duplicates", f"{scenario}_compute_allow_list repeats {', '.join(duplicates)}")
    unknown = [s for s in allow if s not in catalog]
    if unknown:
        yield Problem(
            "sku-catalog", f"{scenario}_compute_allow_list names SKUs missing from the catalog: {', '.join(unknown)}"
        )
    recommended = spec.recommended_skus(scenario)
    if set(recommended) != set(allow):
        extra = sorted(set(recommended) - set(allow))
        missing = sorted(set(allow) - set(recommended))
        yield Problem(
            "recommended-sku",
            f"{scenario}-recommended-sku must equal the allow-list as a set; "
            f"not in allow-list: {extra or 'none'}; missing: {missing or 'none'}",
        )
    try:
        declared = spec.min_sku_spec(scenario)
    except ValueError as exc:
        yield Problem("min-sku-spec", f"{scenario}-min-sku-spec: {exc}")
        return
    known = [s for s in allow if s in catalog]
    if known:
        computed = per_field_minimum(known)
        if declared != computed:
            yield Problem(
                "min-sku-spec",
                f"{scenario}-min-sku-spec is {declared} but the per-field minimum over the allow-list is {computed}",
            )


def _inference_support(spec: AssetSpec) -> Iterator[Problem]:
    unsupported = [s for s in spec.allow_list("inference") if not online_endpoint_supports(s)]
    if unsupported:
        yield Problem("inference-sku-supported", f"managed online endpoints do not support: {', '.join(unsupported)}")


def _finetune_tasks(spec: AssetSpec) -> Iterator[Problem]:
    if spec.allow_list("finetune") and not spec.finetuning_tasks:
        yield Problem(
            "finetuning-tasks",
            "system_metadata.tasks.fineTuningTasks is required when supportedComputes.finetuneComputes exists",
        )


def _companion_files(spec: AssetSpec) -> Iterator[Problem]:
    root = spec.path.parent
    asset = _read_yaml(root / "asset.yaml")
    if not isinstance(asset, dict) or asset.get("spec") != spec.path.name or asset.get("type") != "model":
        yield Problem("asset-yaml", f"asset.yaml must have type: model and spec: {spec.path.name}")
    extra = _read_yaml(root / str((asset or {}).get("extra_config", "model/model.yaml")))
    publish = (extra or {}).get("publish", {}) if isinstance(extra, dict) else {}
    if publish.get("type") != "mlflow_model":
        yield Problem("model-yaml", "model.yaml must publish as type mlflow_model")
    if not spec.description_path.is_file():
        yield Problem("description", f"{spec.description_path} is missing")
    else:
        try:
            _ = spec.sample_request  # reading it parses it out of the card
        except Exception as exc:
            yield Problem("description", f"model card sample request: {exc}")
    try:
        from azure.ai.ml import load_model

        loaded = load_model(spec.path)
        if str(loaded.version) != spec.version or loaded.name != spec.name:
            yield Problem("version-agree", "azure.ai.ml reads a different name or version from spec.yaml")
    except Exception as exc:
        yield Problem("azure-loader", f"spec.yaml does not load with azure.ai.ml load_model: {_first_line(exc)}")


SPEC_RULES: tuple[Callable[[AssetSpec], Iterator[Problem]], ...] = (
    _identity,
    _inference_support,
    _finetune_tasks,
    _companion_files,
)


def validate_spec(spec: AssetSpec) -> list[Problem]:
    problems = [p for rule in SPEC_RULES for p in rule(spec)]
    problems += [p for scenario in SCENARIOS for p in _scenario(spec, scenario)]
    return problems


def lifecycle_warnings(spec: AssetSpec) -> list[Problem]:
    """The card's allow-lists stay as published; SKUs in them that cannot be used are named here."""
    warnings = []
    for scenario in SCENARIOS:
        listed = [name for name in map(canonical_sku, spec.allow_list(scenario)) if name]
        statuses = [sku_status(name, scenario) for name in listed]
        for status in statuses:
            if not status.usable:
                message = f"{scenario}_compute_allow_list: {status.blocked} (kept as the card lists it; never picked)"
                warnings.append(Problem("sku-lifecycle", message))
        by_date: dict[str, list[str]] = {}
        for status in statuses:
            if status.usable and status.announced:
                by_date.setdefault(status.announced.isoformat(), []).append(status.sku)
        for when, skus in by_date.items():
            message = f"{scenario}_compute_allow_list: retirement announced for {when}: {', '.join(skus)}"
            warnings.append(Problem("sku-lifecycle", message))
    return warnings


# Azure ML YAML files ----------------------------------------------------------------------------


def _loaders() -> dict[str, Callable[[Path], Any]]:
    from azure.ai.ml import (
        load_batch_deployment,
        load_batch_endpoint,
        load_component,
        load_compute,
        load_environment,
        load_job,
        load_model,
        load_online_deployment,
        load_online_endpoint,
    )

    from .azure_ml import sdk

    return {
        "managedOnlineEndpoint": load_online_endpoint,
        "managedOnlineDeployment": load_online_deployment,
        "batchEndpoint": load_batch_endpoint,
        "batchDeployment": load_batch_deployment,
        "modelBatchDeployment": sdk.model_batch_deployment_loader(),  # a batchDeployment with `type: model`
        "environment": load_environment,
        "commandJob": load_job,
        "pipelineJob": load_job,
        "commandComponent": load_component,
        "model": load_model,
        "amlCompute": load_compute,
    }


def _schema_kind(data: Any) -> str | None:
    schema = data.get("$schema", "") if isinstance(data, dict) else ""
    match = re.search(r"/([A-Za-z]+)\.schema\.json$", str(schema))
    kind = match.group(1) if match else None
    if kind == "batchDeployment" and data.get("type") == "model":
        return "modelBatchDeployment"
    return kind


def yaml_scenario(path: Path, kind: str) -> str | None:
    """Which allow-list governs a file's compute: deployments and the clusters beside them under
    jobs/deploy/ (a batch deployment's) serve (inference); jobs by name."""
    if kind in ("managedOnlineDeployment", "batchDeployment", "modelBatchDeployment"):
        return "inference"
    if kind == "amlCompute" and path.parent.name == "deploy":
        return "inference"
    name = path.name.lower()
    if "evaluat" in name:
        return "evaluation"
    if "finetune" in name or "fine-tune" in name:
        return "finetune"
    return None


def instance_types(entity: Any) -> list[str]:
    """Every VM size an entity names: deployments, job resources, pipeline nodes and the
    `instance_type` input of a registry component such as model_evaluation_pipeline, clusters."""
    found: list[str] = []
    for attr in ("instance_type", "size"):
        if isinstance(getattr(entity, attr, None), str):
            found.append(getattr(entity, attr))
    resources = getattr(entity, "resources", None)
    if resources is not None and isinstance(getattr(resources, "instance_type", None), str):
        found.append(resources.instance_type)
    node_input = (getattr(entity, "inputs", None) or {}).get("instance_type")
    data = getattr(node_input, "_data", None)
    if isinstance(data, str) and "${{" not in data:
        found.append(data)
    for node in (getattr(entity, "jobs", None) or {}).values():
        found += instance_types(node)
    return found


def presubmit_problems(entity: Any, path: Path) -> list[Problem]:
    """The local checks azure.ai.ml runs before it sends an entity, each reported with its YAML path:
    jobs and components: `_validate()` (JobOperations / ComponentOperations.create_or_update);
    deployments: the name and scale-settings checks, a model batch deployment's `_validate()` (its
    output action) and the scoring script's syntax (Online/BatchDeploymentOperations.begin_create_or_update);
    environments: `validate()` (its REST form)."""
    from .azure_ml import sdk

    found, checks = sdk.presubmit_checks(entity)
    if found:
        return [Problem("azure-presubmit", f"{path}: {where}: {text}") for where, text in found.items()]
    problems = []
    for where, check in checks:
        try:
            check()
        except Exception as exc:  # ValidationException and what the checks raise on unreadable files
            problems.append(Problem("azure-presubmit", f"{path}: {where}: {_first_line(exc)}"))
    return problems


def _size_problems(
    path: Path, sizes: list[str], rules: SkuRules, online_endpoint: bool, warnings: list[Problem]
) -> list[Problem]:
    problems = []
    for size in dict.fromkeys(sizes):
        fit = assess(size, rules, online_endpoint)
        if fit.rule == "sku-catalog":
            continue  # reported by the spec rules
        if not fit.fits:
            problems.append(Problem(fit.rule, f"{path}: {fit.message}"))
        elif fit.notice:
            warnings.append(Problem("sku-lifecycle", f"{path}: {fit.notice}"))
    return problems


def sku_rules(spec: AssetSpec, scenario: str) -> SkuRules:
    """The spec's rules for a scenario's compute; a malformed min-sku-spec (reported by the spec rules) as none."""
    try:
        minimum = spec.min_sku_spec(scenario)
    except ValueError:
        minimum = None
    return SkuRules(scenario, spec.allow_list(scenario), minimum)


def validate_yaml_file(path: Path, spec: AssetSpec, warnings: list[Problem] | None = None) -> list[Problem]:
    """Problems of one Azure ML YAML; warnings (a SKU with a retirement announced) go to `warnings`."""
    warnings = [] if warnings is None else warnings
    data = _read_yaml(path)
    kind = _schema_kind(data)
    if kind is None:
        return []  # not an Azure ML entity (a conda file, an evaluation config)
    loader = _loaders().get(kind)
    if loader is None:
        return [Problem("azure-loader", f"{path}: no azure.ai.ml loader for schema {kind!r}")]
    try:
        entity = loader(path)
    except Exception as exc:
        return [Problem("azure-loader", f"{path}: {_first_line(exc)}")]
    problems = presubmit_problems(entity, path)
    sizes = instance_types(entity)
    if not sizes:
        return problems
    scenario = yaml_scenario(path, kind)
    if scenario is None:
        return problems + [
            Problem("allow-list", f"{path}: names {sizes} but no scenario (evaluation/finetune) is in its file name")
        ]
    online = kind == "managedOnlineDeployment"
    return problems + _size_problems(path, sizes, sku_rules(spec, scenario), online, warnings)


def asset_yaml_files(root: Path) -> list[Path]:
    return sorted(
        p for folder in YAML_FOLDERS for p in (root / folder).rglob("*.y*ml") if p.suffix in (".yml", ".yaml")
    )


def validate_asset(spec: AssetSpec, warnings: list[Problem] | None = None) -> list[Problem]:
    """Every problem of the asset; warnings, when a list is given, are appended to it."""
    warnings = [] if warnings is None else warnings
    root = spec.path.parent
    problems = validate_spec(spec)
    problems += [Problem(rule, message) for rule, message in asset_ci_problems(root)]
    warnings += lifecycle_warnings(spec)
    for path in asset_yaml_files(root):
        problems += validate_yaml_file(path, spec, warnings)
    return problems


def _read_yaml(path: Path) -> Any:
    """None for a file that is not YAML (validate_yaml_file reports it by the loaders' own words)."""
    try:
        return read_yaml(path)
    except AssetError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:400]

"""One SKU assessment: whether a VM size may run a scenario of the asset, and if not, why.

The rules, in the order they are checked (the first that fails is the reason):
  allow-list               the scenario's compute allow-list names it (case-insensitively, as Azure compares)
  sku-catalog              model/sku_catalog.csv knows its size
  min-sku-spec             every field is at least the scenario's min-sku-spec
  inference-sku-supported  a managed online endpoint takes it (only when it is for one)
  sku-lifecycle            not retired, and a GPU the scenario's software runs on (sku_lifecycle)
validate (spec and YAML files), deploy (online and batch) and the notebooks' backends all ask here;
the inputs are plain values, so spec.yaml and a registered model's tags answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from .sku_lifecycle import refusal, sku_status
from .skus import canonical_sku, meets, sku_catalog, supported_inference_skus
from .spec import SkuSpec


@dataclass(frozen=True)
class SkuFit:
    sku: str  # as it was asked for
    name: str | None  # the catalog's spelling; None: not in the catalog
    rule: str = ""  # the rule it fails; "" when it fits
    reason: str = ""  # why not, as a phrase after the SKU's name
    message: str = ""  # why not, one sentence naming the SKU (and, when retired, the nearest live one)
    notice: str = ""  # a retirement announced for a later date

    @property
    def fits(self) -> bool:
        return not self.rule

    @property
    def spec(self) -> SkuSpec | None:
        return sku_catalog()[self.name] if self.name else None


@dataclass(frozen=True)
class SkuRules:
    """What the asset says about one scenario's compute: its allow-list and min-sku-spec, and whose they are."""

    scenario: str
    allow_list: Sequence[str]
    minimum: SkuSpec | None
    owner: str = "spec.yaml"  # named in the allow-list's refusal: spec.yaml, or a registered model

    def candidates(self) -> list[str]:
        """The catalog SKUs of the allow-list that meet the minimum, in the list's order."""
        names = [canonical_sku(sku) for sku in self.allow_list]
        return [name for name in names if name is not None and (self.minimum is None or meets(name, self.minimum))]


def assess(sku: str, rules: SkuRules, online_endpoint: bool = False, today: date | None = None) -> SkuFit:
    """The first rule the SKU fails (see the module docstring), or a fit with any retirement notice."""
    scenario = rules.scenario
    if sku.lower() not in {allowed.lower() for allowed in rules.allow_list}:
        return _unfit(sku, None, "allow-list", f"is not in {rules.owner}'s {scenario}_compute_allow_list")
    name = canonical_sku(sku)
    if name is None:
        return _unfit(sku, None, "sku-catalog", "has no entry in model/sku_catalog.csv")
    if rules.minimum is not None and not meets(name, rules.minimum):
        below = (
            f"({sku_catalog()[name]}) is below {scenario}-min-sku-spec {rules.minimum} (vCPUs|GPUs|memoryGB|tempDiskGB)"
        )
        return _unfit(sku, name, "min-sku-spec", below)
    if online_endpoint and not online_endpoint_supports(sku):
        return _unfit(sku, name, "inference-sku-supported", "is not supported by managed online endpoints")
    status = sku_status(name, scenario, today)
    if not status.usable:
        message = refusal(status, scenario, rules.candidates(), today)
        return SkuFit(sku, name, "sku-lifecycle", status.blocked, message)
    return SkuFit(sku, name, notice=status.notice)


def online_endpoint_supports(sku: str) -> bool:
    """Whether a managed online endpoint takes the SKU (the list Azure's asset CI checks against)."""
    return sku.lower() in supported_inference_skus()


def assess_allow_list(rules: SkuRules, online_endpoint: bool = False, today: date | None = None) -> list[SkuFit]:
    """Every SKU of the allow-list, fitting ones first, each group smallest first (GPUs weigh most)."""
    fits = [assess(sku, rules, online_endpoint, today) for sku in rules.allow_list]
    return sorted(fits, key=lambda fit: (not fit.fits, _size(fit.spec)))


def _unfit(sku: str, name: str | None, rule: str, reason: str) -> SkuFit:
    return SkuFit(sku, name, rule, reason, f"{sku} {reason}")


def _size(spec: SkuSpec | None) -> tuple:
    """Smallest first, GPUs weighing most (they cost most); unknown SKUs last."""
    if spec is None:
        return (1,)
    return (0, spec.gpus, spec.vcpus, spec.memory_gb, spec.temp_disk_gb)

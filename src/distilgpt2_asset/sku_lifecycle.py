"""Whether a SKU of an allow-list can still be used: not retired, and a GPU our software can run on.

The facts (GPU model, compute capability, announced retirement date) are model/sku_catalog.csv's,
each with its source. What each scenario runs on a GPU:
- finetune: the torch wheel pinned in environments/training/conda.yml. PyTorch's CUDA support
  matrix for releases 2.12 and 2.13 (pytorch/pytorch RELEASE.md, "PyTorch CUDA Support Matrix")
  lists the architectures each Linux x86-64 build carries. A GPU runs code built for its own major
  version and a lower or equal minor (NVIDIA's binary compatibility), so the CUDA 12.6 build runs an
  M60 (5.2), V100 (7.0), T4 (7.5) and A100 (8.0); the CUDA 13.0 build, the one PyPI serves for
  torch 2.13.0, needs 7.5 or more (a V100 gets "no kernel image").
- inference: scoring/ runs CTranslate2 on CUDA with int8_float16, which needs compute capability
  7.0 or more (CTranslate2 2.3.0 release notes); the inference environment's torch is the CPU wheel.
- evaluation: Azure's model_evaluation_pipeline component brings its own environment, so only
  retirement applies.
A SKU retired on a past date is never picked and is refused when asked for, with the nearest usable
SKU of the allow-list suggested; a retirement announced for a later date is a notice only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import yaml

from .errors import AssetError
from .paths import asset_root
from .skus import canonical_sku, meets, sku_catalog, sku_facts

# Architectures (compute capabilities) of each torch CUDA build, PyTorch 2.12 / 2.13 support matrix.
TORCH_CUDA_ARCHITECTURES = {
    "cu126": ("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"),
    "cu130": ("7.5", "8.0", "8.6", "9.0", "10.0", "12.0"),
    "cu132": ("7.5", "8.0", "8.6", "9.0", "10.0", "12.0"),
}
PYPI_TORCH_BUILD = "cu130"  # a torch pin without a local label (+cuNNN) gets PyPI's build
CTRANSLATE2_CUDA_MINIMUM = "7.0"  # int8_float16
TRAINING_CONDA = Path("environments") / "training" / "conda.yml"


def _capability(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@dataclass(frozen=True)
class GpuRuntime:
    """The software a scenario runs on GPUs: the architectures it is built for, or a minimum."""

    name: str
    architectures: tuple[str, ...] = ()
    minimum: str = ""

    def runs_on(self, capability: str) -> bool:
        have = _capability(capability)
        if self.architectures:
            built = [_capability(arch) for arch in self.architectures]
            return any(major == have[0] and minor <= have[1] for major, minor in built)
        return have >= _capability(self.minimum)

    @property
    def needs(self) -> str:
        if self.architectures:
            return f"compute capability {', '.join(self.architectures)} (or a later minor of the same major)"
        return f"compute capability {self.minimum} or higher"


INFERENCE_RUNTIME = GpuRuntime("scoring/'s CTranslate2 engine (int8_float16 on CUDA)", minimum=CTRANSLATE2_CUDA_MINIMUM)


def training_runtime() -> GpuRuntime | None:
    """The torch build environments/training/conda.yml installs; None when the checkout has no such file."""
    path = asset_root() / TRAINING_CONDA
    return torch_runtime(path) if path.is_file() else None


@cache
def torch_runtime(conda_file: Path) -> GpuRuntime:
    """The GPUs the torch wheel pinned in a conda file runs on (its CUDA build, from the local label)."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    conda = yaml.safe_load(Path(conda_file).read_text()) or {}
    pip: list[str] = next((d["pip"] for d in conda.get("dependencies", []) if isinstance(d, dict) and "pip" in d), [])
    pins = [Requirement(line) for line in pip if not str(line).startswith("-")]
    torch = next((pin for pin in pins if pin.name == "torch"), None)
    if torch is None or not str(torch.specifier).startswith("=="):
        raise AssetError(f"{conda_file}: torch must be pinned with == (which GPUs it runs on depends on its build)")
    version = Version(str(torch.specifier)[2:])
    build = version.local or PYPI_TORCH_BUILD
    if build not in TORCH_CUDA_ARCHITECTURES:
        raise AssetError(
            f"{conda_file}: torch {version} is the {build!r} build; GPU jobs need a CUDA build "
            f"({', '.join(TORCH_CUDA_ARCHITECTURES)})"
        )
    return GpuRuntime(f"torch {version.public}+{build}", TORCH_CUDA_ARCHITECTURES[build])


def scenario_runtime(scenario: str) -> GpuRuntime | None:
    """What runs on the GPU in a scenario; None: not our software (evaluation) or not in this checkout."""
    return {"inference": lambda: INFERENCE_RUNTIME, "finetune": training_runtime}.get(scenario, lambda: None)()


@dataclass(frozen=True)
class SkuStatus:
    sku: str
    blocked: str = ""  # why it cannot be used now
    announced: date | None = None  # a retirement announced for a later date

    @property
    def usable(self) -> bool:
        return not self.blocked

    @property
    def notice(self) -> str:
        return f"{self.sku}: retirement announced for {self.announced.isoformat()}" if self.announced else ""


def sku_status(sku: str, scenario: str, today: date | None = None) -> SkuStatus:
    """Whether a catalog SKU can run a scenario today."""
    facts = sku_facts()[sku]
    today = today or date.today()
    if facts.retirement is not None and facts.retirement <= today:
        return SkuStatus(sku, blocked=f"{sku} was retired on {facts.retirement.isoformat()}")
    runtime = scenario_runtime(scenario)
    if facts.compute_capability and runtime is not None and not runtime.runs_on(facts.compute_capability):
        return SkuStatus(
            sku,
            blocked=f"{sku}'s {facts.gpu_model} (compute capability {facts.compute_capability}) cannot run "
            f"{runtime.name}, which needs {runtime.needs}",
        )
    return SkuStatus(sku, announced=facts.retirement)


def nearest_usable(sku: str, candidates: Iterable[str], scenario: str, today: date | None = None) -> str | None:
    """The usable candidate closest in size to a SKU: the same GPU count first, then vCPUs and memory."""
    have = sku_catalog()[sku]

    def distance(other_name: str) -> tuple[int, float]:
        other = sku_catalog()[other_name]
        ratios = abs(math.log(other.vcpus / have.vcpus)) + abs(math.log(other.memory_gb / have.memory_gb))
        return abs(other.gpus - have.gpus), ratios

    usable = [name for name in candidates if name != sku and sku_status(name, scenario, today).usable]
    return min(usable, key=distance, default=None)


def refusal(status: SkuStatus, scenario: str, candidates: Iterable[str], today: date | None = None) -> str:
    """One line: why the SKU cannot be used and which SKU of the allow-list to take instead."""
    alternative = nearest_usable(status.sku, candidates, scenario, today)
    if alternative is None:
        return f"{status.blocked}; no SKU of the {scenario} allow-list can be used instead"
    return f"{status.blocked}; the nearest live SKU of the {scenario} allow-list is {alternative}"


def allow_listed(source, scenario: str) -> list[str]:
    """The catalog SKUs of an allow-list that meet its min-sku-spec, in the list's order; source:
    spec.yaml (AssetSpec) or a registered model (ModelInfo), which both answer these two questions."""
    minimum = source.min_sku_spec(scenario)
    names = [canonical_sku(sku) for sku in source.allow_list(scenario)]
    return [name for name in names if name is not None and (minimum is None or meets(name, minimum))]

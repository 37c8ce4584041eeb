"""The engine's configuration for the CPU it runs on: engine, precision, threads and KV cache, decided once.

A CPU's class is the instruction set the int8 kernels depend on. Per class, the engine and the
OpenVINO inference precision come from speeds measured on a machine of that class
(benchmarks/engine-speeds.json, written by `python -m distilgpt2_asset.bench engine-speeds`; a
test checks this table against it). The precision is always pinned: OpenVINO's CPU plugin runs
in bf16 by default on a CPU with bf16, which was 2.0x slower at batch 8 on an Intel Xeon with AMX,
never clearly faster on an AMD EPYC with bf16, and computes with other numbers than the reference
(on the Intel CPU a seeded request's text then depended on what shared its batch). A class
nobody measured is marked so, and its choice names the class it borrows from. Any TEXTGEN_*
setting the deployment sets wins over the table.

With f32 activations and int8 weights, the plugin quantizes each matmul's activations to int8 on
the fly (DYNAMIC_QUANTIZATION_GROUP_SIZE, groups of 32 by default) so that the int8 kernels run.
On the Intel Xeon with AMX, groups of 128 were faster than the default's 32 in every round at
batch 8 (engine-speeds.json: "f32/q128" against "f32") and kept greedy parity; a class's choice
names its group where one was measured faster.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .settings import ServingSettings

EngineName = Literal["openvino", "ctranslate2", "transformers"]  # the engine names; engines.ENGINES maps them
Precision = Literal["f32", "bf16", "f16"]  # OpenVINO's INFERENCE_PRECISION_HINT values for activations
CPUINFO = Path("/proc/cpuinfo")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassChoice:
    engine: EngineName
    precision: Precision
    measured_on: str | None  # the CPU the choice was measured on; None: unmeasured
    borrowed_from: str | None = None  # an unmeasured class takes this measured class's choice
    quantization_group: int | None = None  # DYNAMIC_QUANTIZATION_GROUP_SIZE; None: the plugin's default

    @property
    def openvino_variant(self) -> str:
        """Its OpenVINO configuration as bench's engine-speeds names it."""
        return openvino_variant(self.precision, self.quantization_group)


def openvino_variant(precision: str, quantization_group: int | None) -> str:
    """An OpenVINO configuration's name: the precision hint, and the activation group when one is set."""
    return precision if quantization_group is None else f"{precision}/q{quantization_group}"


def parse_variant(name: str) -> tuple[str, int | None]:
    """openvino_variant's inverse: "f32/q128" -> ("f32", 128)."""
    precision, _, group = name.partition("/q")
    return precision, int(group) if group else None


def in_words(precision: str, quantization_group: int | None) -> str:
    """An OpenVINO configuration for a reader: "f32, activations quantized in groups of 128"."""
    if quantization_group is None:
        return precision
    if quantization_group == 0:
        return f"{precision}, activations not quantized"
    return f"{precision}, activations quantized in groups of {quantization_group}"


# Most specific first: a CPU belongs to the first class whose flags it has.
CPU_CLASSES: dict[str, frozenset[str]] = {
    "amx": frozenset({"amx_int8"}),  # Intel Sapphire Rapids and later (also avx512_bf16, avx512_vnni)
    "avx512_bf16": frozenset({"avx512_bf16", "avx512_vnni"}),  # AMD Zen 4: VNNI and bf16, no AMX
    "avx512_vnni": frozenset({"avx512_vnni"}),  # Intel Cascade Lake, AMD EPYC without bf16
    "avx512": frozenset({"avx512f"}),  # Intel Skylake
    "avx2": frozenset({"avx2"}),  # AMD EPYC Zen 2/3 (D*a_v4), older Intel
}
OLDER = "older"  # none of the above

# Each measured class's fastest engine and OpenVINO configuration at batch 8 (the f32 hint with the
# int8 weights everywhere so far: bf16 was slower wherever it was measured, and breaks greedy parity).
CLASS_CHOICES: dict[str, ClassChoice] = {
    "amx": ClassChoice("openvino", "f32", "Intel(R) Xeon(R) Processor", quantization_group=128),
    "avx512_bf16": ClassChoice("openvino", "f32", "AMD EPYC"),
    "avx512_vnni": ClassChoice("openvino", "f32", "AMD EPYC"),
    "avx512": ClassChoice("openvino", "f32", None, borrowed_from="avx512_vnni"),
    "avx2": ClassChoice("openvino", "f32", None, borrowed_from="avx512_vnni"),
    OLDER: ClassChoice("openvino", "f32", None, borrowed_from="avx512_vnni"),
}


@dataclass(frozen=True)
class Cpu:
    model: str
    flags: frozenset[str]

    @property
    def cpu_class(self) -> str:
        return next((name for name, needs in CPU_CLASSES.items() if needs <= self.flags), OLDER)


def parse_cpuinfo(text: str) -> Cpu:
    """The CPU model name and flags of /proc/cpuinfo's first processor."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return Cpu(fields.get("model name", "unknown CPU"), frozenset(fields.get("flags", "").split()))


def this_cpu() -> Cpu:
    try:
        return parse_cpuinfo(CPUINFO.read_text())
    except OSError:  # not Linux: no class, the fallback choice
        return Cpu("unknown CPU", frozenset())


def available_cpus() -> int:
    """The CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class EngineConfig:
    """Everything an engine is built with; made by decide(), the one place these are chosen."""

    engine: EngineName
    device: Literal["cpu", "cuda"]
    precision: Precision | None  # activations (the weights stay int8); None only in bench: the plugin's default
    quantization_group: int | None  # activations quantized to int8 in groups of this many; None: the plugin's default
    threads: int
    kv_cache_gb: int
    max_batch_size: int
    cpu: Cpu
    why: str  # where the engine and precision come from

    @property
    def openvino_properties(self) -> dict:
        hint: dict[str, str | int] = {} if self.precision is None else {"INFERENCE_PRECISION_HINT": self.precision}
        if self.quantization_group is not None:
            hint["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = self.quantization_group
        # Unpinned: the server's threads share these CPUs, and a compute thread pinned to a CPU where
        # one of them runs waits there while its partner idles at the step's barrier. The plugin pins
        # by default on Linux; in four A/B runs on 2 vCPUs, unpinned was never worse (short requests'
        # slowdown p95 1.86 against 2.16, 1.79 against 1.86, twice equal).
        return {"INFERENCE_NUM_THREADS": self.threads, "ENABLE_CPU_PINNING": False, **hint}

    def describe(self) -> str:
        return (
            f"CPU {self.cpu.model} (class {self.cpu.cpu_class}): engine {self.engine} on {self.device}, precision "
            f"{self.activations}, {self.threads} threads, up to {self.max_batch_size} sequences, KV cache <= "
            f"{self.kv_cache_gb} GB ({self.why})"
        )

    @property
    def activations(self) -> str:
        """The activations' precision, and how OpenVINO's meet its int8 weights where the plugin's
        default is not kept."""
        return in_words(str(self.precision), self.quantization_group if self.engine == "openvino" else None)


def class_choice(cpu_class: str) -> ClassChoice:
    return CLASS_CHOICES.get(cpu_class, CLASS_CHOICES[OLDER])


def decide(settings: ServingSettings, cpu: Cpu | None = None, device: Literal["cpu", "cuda"] | None = None):
    """The engine configuration for this CPU (or cpu, e.g. a test's), with settings' TEXTGEN_* values winning."""
    cpu = cpu or this_cpu()
    device = device or settings.resolved_device()
    choice = class_choice(cpu.cpu_class)
    if choice.measured_on:
        why = f"the fastest measured on {choice.measured_on}"
    else:
        why = f"class {cpu.cpu_class} unmeasured: {choice.borrowed_from}'s choice"
    chosen = {
        "engine": settings.engine != "auto",
        "precision": settings.precision != "auto",
        "quantization_group": settings.quantization_group != "auto",
        "threads": settings.threads,
    }
    overridden = sorted(name for name, by_setting in chosen.items() if by_setting)
    if overridden:
        why += "; set by TEXTGEN_" + ", TEXTGEN_".join(name.upper() for name in overridden)
    return EngineConfig(
        engine=settings.engine_on(device, choice.engine),
        device=device,
        precision=choice.precision if settings.precision == "auto" else settings.precision,
        quantization_group=(
            choice.quantization_group if settings.quantization_group == "auto" else settings.quantization_group
        ),
        threads=settings.threads or available_cpus(),
        kv_cache_gb=settings.kv_cache_gb,
        max_batch_size=settings.max_batch_size,
        cpu=cpu,
        why=why,
    )

"""What every benchmark measures on: the distilgpt2-shaped testing model, and the CPU named with its class."""

from __future__ import annotations

import shutil
from pathlib import Path

from distilgpt2_scoring.hardware import available_cpus, this_cpu

from ..paths import home
from ..spec import load_spec

# The instruction sets int8 speed depends on (AVX-512 VNNI roughly doubles int8 matrix work over AVX2).
REPORTED_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


def benchmark_model() -> Path:
    """The distilgpt2-shaped testing model built as an MLflow folder (made once under the local home)."""
    from ..build import build_mlflow_model
    from ..testing_models import make_testing_model

    root = home() / "bench"
    mlflow_dir = root / "distilgpt2-shaped-mlflow"
    snapshot = root / "distilgpt2-shaped"
    if not (mlflow_dir / "engines").is_dir():  # built before the OpenVINO model was part of a build
        shutil.rmtree(mlflow_dir, ignore_errors=True)
        if not (snapshot / "config.json").is_file():
            shutil.rmtree(snapshot, ignore_errors=True)  # an interrupted earlier attempt
            make_testing_model("distilgpt2", snapshot)
        build_mlflow_model(load_spec(), str(snapshot), None, mlflow_dir)
    return mlflow_dir


def machine() -> dict:
    """The CPU's model name and class (hardware.py's), beside every figure a benchmark records."""
    cpu = this_cpu()
    return {
        "cpu": cpu.model,
        "cpu_class": cpu.cpu_class,
        "cpus": available_cpus(),
        "cpu_features": [f for f in REPORTED_FEATURES if f in cpu.flags],
    }

"""What a GPU SKU runs, checked on a machine without a GPU: that a process can open the cuBLAS
CTranslate2 asks for by name, and where the torch models go when the environment's torch is a CPU build."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distilgpt2_scoring.settings import ServingSettings


def test_on_a_gpu_sku_the_cpu_build_of_torch_keeps_the_torch_models_on_the_cpu(caplog):
    assert not torch.cuda.is_available()  # the inference environment's torch, as here
    with caplog.at_level(logging.WARNING):
        assert ServingSettings(device="cuda").torch_device() == "cpu"
    assert "no CUDA" in caplog.text
    assert ServingSettings(device="cpu").torch_device() == "cpu"


LOAD_THEN_OPEN_BY_NAME = """
import ctypes
from distilgpt2_scoring.engines.ctranslate2 import load_cublas
load_cublas()
# What CTranslate2 does on a GPU: open cuBLAS by its soname, from no library path.
print(ctypes.CDLL("libcublas.so.12").cublasCreate_v2())
"""


@pytest.fixture
def cublas_wheel(tmp_path):
    """The nvidia-cublas-cu12 wheel's layout (nvidia/ is a namespace package) with two small libraries
    in place of its 600 MB ones: the same sonames, and libcublas needing libcublasLt as the real one does."""
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build stand-in libraries")
    lib = tmp_path / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    (tmp_path / "nvidia" / "cublas" / "__init__.py").write_text("")
    (tmp_path / "lt.c").write_text("int cublasLtCreate(void) { return 7; }\n")
    (tmp_path / "blas.c").write_text(
        "int cublasLtCreate(void);\nint cublasCreate_v2(void) { return cublasLtCreate() * 6; }\n"
    )
    build = [compiler, "-shared", "-fPIC"]
    subprocess.run(
        [*build, "-Wl,-soname,libcublasLt.so.12", "-o", lib / "libcublasLt.so.12", tmp_path / "lt.c"], check=True
    )
    subprocess.run(
        [
            *build,
            "-Wl,-soname,libcublas.so.12",
            "-o",
            lib / "libcublas.so.12",
            tmp_path / "blas.c",
            lib / "libcublasLt.so.12",
        ],
        check=True,
    )
    return tmp_path


def _python(code: str, *path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), *sys.path])}
    env.pop("LD_LIBRARY_PATH", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_with_the_wheel_a_process_opens_cublas_by_its_soname(cublas_wheel):
    result = _python(LOAD_THEN_OPEN_BY_NAME, cublas_wheel)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_without_loading_it_cublas_is_not_found_by_name(cublas_wheel):
    result = _python(LOAD_THEN_OPEN_BY_NAME.replace("load_cublas()", "pass"), cublas_wheel)
    assert result.returncode != 0 and "libcublas.so.12" in result.stderr


def test_without_the_wheel_loading_is_a_no_op(tmp_path):
    result = _python("from distilgpt2_scoring.engines.ctranslate2 import load_cublas; load_cublas()", tmp_path)
    assert result.returncode == 0, result.stderr

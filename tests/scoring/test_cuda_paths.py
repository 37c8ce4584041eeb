"""What a GPU SKU runs, checked on a machine without a GPU: the libraries CTranslate2 opens there,
and where the torch models go when the environment's torch is a CPU build."""

from __future__ import annotations

import ctypes
import logging
import sys

import pytest
import torch

from distilgpt2_scoring.engines import ctranslate2 as ct2_engine
from distilgpt2_scoring.settings import ServingSettings


def test_on_a_gpu_sku_the_cpu_build_of_torch_keeps_the_torch_models_on_the_cpu(caplog):
    assert not torch.cuda.is_available()  # the inference environment's torch, as here
    with caplog.at_level(logging.WARNING):
        assert ServingSettings(device="cuda").torch_device() == "cpu"
    assert "no CUDA" in caplog.text
    assert ServingSettings(device="cpu").torch_device() == "cpu"


@pytest.fixture
def cublas_wheel(tmp_path, monkeypatch):
    """The nvidia-cublas-cu12 wheel's layout (nvidia/ is a namespace package), and the libraries
    that would be loaded from it: the real files need a 600 MB wheel, loaded for real by hand."""
    lib = tmp_path / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    (tmp_path / "nvidia" / "cublas" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "nvidia" or m.startswith("nvidia.")]:
        monkeypatch.delitem(sys.modules, name)
    loaded = []
    monkeypatch.setattr(ctypes, "CDLL", lambda path, mode: loaded.append((path, mode)))
    return lib, loaded


def test_cublas_is_loaded_globally_from_the_wheel_lt_first(cublas_wheel):
    lib, loaded = cublas_wheel
    ct2_engine.load_cublas()
    assert loaded == [
        (str(lib / "libcublasLt.so.12"), ctypes.RTLD_GLOBAL),
        (str(lib / "libcublas.so.12"), ctypes.RTLD_GLOBAL),
    ]


def test_without_the_wheel_nothing_is_loaded(monkeypatch):
    def no_nvidia_package(name):
        raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")

    loaded = []
    monkeypatch.setattr(ctypes, "CDLL", lambda path, mode: loaded.append(path))
    monkeypatch.setattr("importlib.util.find_spec", no_nvidia_package)
    ct2_engine.load_cublas()
    assert loaded == []

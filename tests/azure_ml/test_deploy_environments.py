"""environments/: each loads with load_environment, pins exactly the versions the tests run with
(pyproject.toml), and the inference one covers every package scoring/ imports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ROOT / "environments"
# Loaded only on a GPU SKU (CTranslate2's cuBLAS): pinned like the rest, not installed where the tests run.
GPU_ONLY = {"nvidia-cublas-cu12"}


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    return {canonicalize_name(r.name): str(r.specifier) for r in requirements}


def conda_pip_lines(scenario: str) -> list[str]:
    conda = yaml.safe_load((ENVIRONMENTS / scenario / "conda.yml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    return [line for line in pip if not line.startswith("-")]  # options such as --extra-index-url


def conda_pins(scenario: str) -> dict[str, str]:
    return {
        canonicalize_name(Requirement(line).name): str(Requirement(line).specifier)
        for line in conda_pip_lines(scenario)
    }


@pytest.mark.parametrize("scenario", ["inference", "training", "batch"])
def test_environment_loads_with_its_conda_file(scenario):
    environment = load_environment(ENVIRONMENTS / scenario / "environment.yml")
    assert environment.image.startswith("mcr.microsoft.com/azureml/")
    assert environment.conda_file["dependencies"][0] == "python=3.11"


@pytest.mark.parametrize("scenario", ["inference", "training"])
def test_every_package_is_pinned_to_the_version_the_tests_run_with(scenario):
    pinned_by_project = pyproject_pins()
    for line in conda_pip_lines(scenario):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert str(requirement.specifier).startswith("=="), f"{line} is not pinned with =="
        # The local label (torch 2.13.0+cu126 for training; +cpu here) names the wheel's build, not the version.
        version = Version(str(requirement.specifier)[2:]).public
        if name in pinned_by_project:
            assert "==" + version == pinned_by_project[name], f"{line} disagrees with pyproject.toml"
        if name not in GPU_ONLY:
            assert Version(metadata.version(name)).public == version, (
                f"{line}: the tests run with {metadata.version(name)}"
            )


def test_training_image_is_gpu_capable():
    assert "cuda" in load_environment(ENVIRONMENTS / "training" / "environment.yml").image


def test_training_torch_is_a_cuda_12_build_from_pytorchs_index():
    # PyPI's torch 2.13.0 is built for CUDA 13 (compute capability 7.5+); the live V100 SKU of the
    # finetune allow-list (Standard_ND40rs_v2, 7.0) needs the CUDA 12.6 build.
    conda = yaml.safe_load((ENVIRONMENTS / "training" / "conda.yml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert "torch==2.13.0+cu126" in pip
    assert "--extra-index-url https://download.pytorch.org/whl/cu126" in pip


def _third_party_imports(folder: Path) -> set[str]:
    local = {p.stem for p in folder.iterdir()} | {"distilgpt2_scoring"}
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {n.split(".")[0] for n in names}
    return {n for n in found if n not in sys.stdlib_module_names and n not in local and n != "__future__"}


def test_inference_environment_provides_every_package_scoring_imports():
    # scoring/ is uploaded as the deployment's code and runs with this environment alone.
    distributions = metadata.packages_distributions()
    pinned = set(conda_pins("inference"))
    imports = _third_party_imports(ROOT / "scoring")
    assert "ctranslate2" in imports and "azureml_inference_server_http" in imports
    for module in sorted(imports):
        providers = {canonicalize_name(d) for d in distributions.get(module, [])}
        assert providers & pinned, (
            f"scoring/ imports {module} but environments/inference/conda.yml installs none of {providers}"
        )


def test_inference_environment_installs_the_cublas_that_ctranslate2_opens_on_a_gpu():
    import ctranslate2

    from distilgpt2_scoring.engines.ctranslate2 import CUBLAS_LIBRARIES

    library = next((Path(ctranslate2.__file__).parent.parent / "ctranslate2.libs").glob("libctranslate2*.so*"))
    opened = set(re.findall(rb"libcublas\.so\.(\d+)", library.read_bytes()))
    assert opened == {b"12"}, f"{library.name} opens libcublas.so.{opened}"
    assert "libcublas.so.12" in CUBLAS_LIBRARIES
    for scenario in ("inference", "batch"):
        assert "nvidia-cublas-cu12" in conda_pins(scenario), (
            f"environments/{scenario}/conda.yml lacks nvidia-cublas-cu12"
        )

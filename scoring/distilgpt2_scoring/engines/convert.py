"""Conversions an engine may need, one per kind, run by engines.cache in a subprocess:

    python -m distilgpt2_scoring.engines.convert openvino WEIGHTS OUT
    python -m distilgpt2_scoring.engines.convert ctranslate2 WEIGHTS TOKENIZER OUT
    python -m distilgpt2_scoring.engines.convert safetensors PYTORCH_FOLDER OUT

WEIGHTS is a Hugging Face GPT-2 folder with config.json and model.safetensors; TOKENIZER the
MLflow model's components/tokenizer. `safetensors` turns a pytorch_model.bin (the format older
save_pretrained calls wrote, which Microsoft's published folder may carry) into
model.safetensors, reading it with torch.load(weights_only=True): PyTorch's restricted unpickler
builds tensors and plain containers only and refuses any other object, so no code in the file
can run. Converting once, into the private cache, lets every engine load safetensors only.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

CONFIG_FILES = ("config.json", "generation_config.json")


def to_openvino(weights: Path, output: Path) -> None:
    from .openvino_export import export

    export(weights, output)


def to_ctranslate2(weights: Path, tokenizer: Path, output: Path) -> None:
    from ctranslate2.converters import TransformersConverter

    from .ctranslate2 import QUANTIZATION

    # The converter reads one Hugging Face folder: weights and tokenizer side by side, as links.
    with tempfile.TemporaryDirectory(prefix="ctranslate2-source-") as scratch:
        for item in [*weights.iterdir(), *tokenizer.iterdir()]:
            (Path(scratch) / item.name).symlink_to(item.resolve())
        TransformersConverter(scratch).convert(str(output), quantization=QUANTIZATION)


def to_safetensors(pytorch_folder: Path, output: Path) -> None:
    import torch
    from safetensors.torch import save_file

    state = torch.load(pytorch_folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    output.mkdir(parents=True)
    # Tied weights share storage, which safetensors refuses: each tensor gets its own copy.
    save_file(
        {name: tensor.contiguous().clone() for name, tensor in state.items()},
        str(output / "model.safetensors"),
        {"format": "pt"},
    )
    for name in CONFIG_FILES:
        if (pytorch_folder / name).is_file():
            shutil.copyfile(pytorch_folder / name, output / name)


KINDS: dict[str, Callable[..., None]] = {
    "openvino": to_openvino,
    "ctranslate2": to_ctranslate2,
    "safetensors": to_safetensors,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in KINDS:
        print(
            f"usage: python -m distilgpt2_scoring.engines.convert {{{'|'.join(KINDS)}}} SOURCE... OUTPUT",
            file=sys.stderr,
        )
        return 2
    KINDS[argv[0]](*map(Path, argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""`scan`: modelscan plus our structural rules over a model folder; non-zero exit on a finding."""

from __future__ import annotations

import json
from pathlib import Path

from ..spec import load_spec
from .build import default_output


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "scan",
        help="scan a model folder for unsafe or inconsistent files (ProtectAI modelscan + structural rules)",
        description="One finding per problem (file, rule, severity): pickles and other code-carrying files "
        "(by content, whatever their name), safetensors headers, tensor names and shapes against config.json, "
        "custom code, the GPT-2 tokenizer's hashes, symlinks, executables, files outside the layout, the sha256 "
        "manifest, and ProtectAI modelscan's own findings. Exits 1 on any finding of MEDIUM severity or above.",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="MLflow model folder or Hugging Face model folder (default: the build command's output)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="report format (default: %(default)s)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..errors import AssetError
    from ..model_scan import scan_model

    model = args.model or default_output(load_spec())
    if args.model is None and not model.is_dir():
        raise AssetError(f"no built model at {model}: run `distilgpt2-asset build` or pass --model DIR")
    report = scan_model(model)
    print(json.dumps(report.as_json(), indent=2) if args.format == "json" else report.as_text())
    return 1 if report.failing else 0

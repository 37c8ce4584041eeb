"""Safetensors weights against their config.json: the header parses, and the tensors' names, shapes
and dtypes are exactly what the GPT-2 architecture implies (n_layer, n_embd, vocab_size, ...).

The header is read and checked by hand (8-byte length, JSON, contiguous offsets that end at the
end of the file), so nothing but JSON is ever parsed from a weights file.
"""

from __future__ import annotations

import json
import struct
from math import prod
from pathlib import Path
from typing import Any

from .findings import Finding, Severity

MAX_HEADER = 100 << 20  # the safetensors format's own limit
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_FLOATING = {"F8_E5M2", "F8_E4M3", "F16", "BF16", "F32", "F64"}
_BACKBONE_PREFIX = "transformer."  # GPT2LMHeadModel saves it; GPT-2's original hub files do not
Shape = tuple[int, ...]


class HeaderError(Exception):
    """The file is not a well-formed safetensors file."""


def read_header(path: Path) -> dict[str, dict[str, Any]]:
    """{tensor name: {"dtype", "shape", "data_offsets"}}, with every offset checked against the file."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise HeaderError("shorter than a safetensors header")
        length = struct.unpack("<Q", prefix)[0]
        if length > min(MAX_HEADER, size - 8):
            raise HeaderError(f"the header length {length} does not fit in a file of {size} bytes")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise HeaderError("the header is not JSON") from None
    if not isinstance(header, dict):
        raise HeaderError("the header is not a JSON object")
    header.pop("__metadata__", None)
    _check_offsets(header, size - 8 - length)
    return header


def _check_offsets(header: dict[str, Any], data_bytes: int) -> None:
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            valid = dtype in _DTYPE_BYTES and all(isinstance(n, int) and n >= 0 for n in [*shape, begin, end])
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise HeaderError(f"tensor {name!r} has no valid dtype, shape and data_offsets")
        if end - begin != prod(shape) * _DTYPE_BYTES[dtype]:
            raise HeaderError(f"tensor {name!r}: {end - begin} bytes for shape {shape} of {dtype}")
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise HeaderError(f"the tensor data has a gap or overlap at byte {position}")
        position = end
    if position != data_bytes:
        raise HeaderError(f"the tensors cover {position} bytes of data but the file holds {data_bytes}")


def expected_tensors(config: dict[str, Any]) -> tuple[dict[str, Shape], dict[str, Shape]]:
    """(required, optional) tensor names and shapes of the GPT-2 model config.json describes."""
    if config.get("model_type") != "gpt2":
        raise ValueError(f"model_type {config.get('model_type')!r}; the scan knows GPT-2 (model_type 'gpt2') only")
    architectures = config.get("architectures") or ["GPT2LMHeadModel"]
    if len(architectures) != 1 or architectures[0] not in _HEADS:
        raise ValueError(f"architectures {architectures}; the scan knows {', '.join(sorted(_HEADS))}")
    try:
        layers, width, vocab, positions = (
            int(config[key]) for key in ("n_layer", "n_embd", "vocab_size", "n_positions")
        )
    except (KeyError, TypeError, ValueError):
        raise ValueError("config.json lacks a whole-number n_layer, n_embd, vocab_size or n_positions") from None
    inner = int(config.get("n_inner") or 4 * width)
    required = {
        "wte.weight": (vocab, width),
        "wpe.weight": (positions, width),
        "ln_f.weight": (width,),
        "ln_f.bias": (width,),
    }
    optional: dict[str, Shape] = {}
    for i in range(layers):
        block = f"h.{i}."
        required.update(
            {
                block + "ln_1.weight": (width,),
                block + "ln_1.bias": (width,),
                block + "attn.c_attn.weight": (width, 3 * width),
                block + "attn.c_attn.bias": (3 * width,),
                block + "attn.c_proj.weight": (width, width),
                block + "attn.c_proj.bias": (width,),
                block + "ln_2.weight": (width,),
                block + "ln_2.bias": (width,),
                block + "mlp.c_fc.weight": (width, inner),
                block + "mlp.c_fc.bias": (inner,),
                block + "mlp.c_proj.weight": (inner, width),
                block + "mlp.c_proj.bias": (width,),
            }
        )
        # Causal-mask buffers that older checkpoints (GPT-2's own hub files) still carry.
        optional.update({block + "attn.bias": (1, 1, positions, positions), block + "attn.masked_bias": ()})
    head_required, head_optional = _HEADS[architectures[0]](config, vocab, width)
    return required | head_required, optional | head_optional


def _lm_head(config, vocab, width):
    return {}, {"lm_head.weight": (vocab, width)}  # absent when tied to wte (the default)


def _classifier(config, vocab, width):
    labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 2))
    return {"score.weight": (labels, width)}, {}


def _no_head(config, vocab, width):
    return {}, {}


# Each architecture's head: (required, optional) tensors besides the transformer's.
_HEADS = {"GPT2LMHeadModel": _lm_head, "GPT2ForSequenceClassification": _classifier, "GPT2Model": _no_head}


def check_weights(config_file: str, config_path: Path | None, weights: dict[str, Path]) -> list[Finding]:
    """Every safetensors file parses; together they hold exactly the tensors config.json implies."""
    findings: list[Finding] = []
    found: dict[str, tuple[str, str, Shape]] = {}  # tensor name -> (file, dtype, shape)
    for relative, path in weights.items():
        try:
            header = read_header(path)
        except HeaderError as exc:
            findings.append(Finding(relative, "safetensors", Severity.HIGH, f"not a safetensors file: {exc}"))
            continue
        for name, info in sorted(header.items()):
            if name in found:
                findings.append(
                    Finding(relative, "safetensors", Severity.MEDIUM, f"tensor {name} is also in {found[name][0]}")
                )
            found[name] = (relative, info["dtype"], tuple(info["shape"]))
    for name, (relative, dtype, _) in sorted(found.items()):
        if dtype not in _FLOATING:
            findings.append(
                Finding(
                    relative,
                    "safetensors",
                    Severity.MEDIUM,
                    f"tensor {name} is {dtype}; weights must be floating point",
                )
            )
    if config_path is None or not found:
        return findings
    try:
        required, optional = expected_tensors(json.loads(config_path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        return findings + [
            Finding(config_file, "safetensors", Severity.MEDIUM, f"cannot tell which tensors to expect: {exc}")
        ]
    return findings + _compare(found, required, optional, config_file)


def _compare(found, required: dict[str, Shape], optional: dict[str, Shape], config_file: str) -> list[Finding]:
    prefix = _BACKBONE_PREFIX if any(name.startswith(_BACKBONE_PREFIX) for name in found) else ""
    heads = {"lm_head.weight", "score.weight"}

    def saved_as(name: str) -> str:
        return name if name in heads else prefix + name

    expected = {saved_as(name): shape for name, shape in (optional | required).items()}
    findings = []
    for name, (relative, _, shape) in sorted(found.items()):
        if name not in expected:
            findings.append(
                Finding(
                    relative,
                    "safetensors",
                    Severity.MEDIUM,
                    f"unexpected tensor {name} {list(shape)} for the architecture in {config_file}",
                )
            )
        elif shape != expected[name]:
            findings.append(
                Finding(
                    relative,
                    "safetensors",
                    Severity.MEDIUM,
                    f"tensor {name} has shape {list(shape)}; {config_file} implies {list(expected[name])}",
                )
            )
    missing = sorted(saved_as(name) for name in required if saved_as(name) not in found)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        findings.append(
            Finding(
                config_file,
                "safetensors",
                Severity.MEDIUM,
                f"the weights lack {len(missing)} tensor(s) it implies: {shown}",
            )
        )
    return findings

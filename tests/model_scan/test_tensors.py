"""tensors: safetensors headers parse, and the tensors are exactly what config.json's GPT-2 implies."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from distilgpt2_asset.model_scan.tensors import HeaderError, check_weights, expected_tensors, read_header

CONFIG = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "n_layer": 2,
    "n_embd": 8,
    "vocab_size": 11,
    "n_positions": 16,
}


def gpt2_tensors(config=CONFIG, prefix="transformer.", dtype=np.float32):
    required, _ = expected_tensors(config)
    heads = ("lm_head.", "score.")
    return {
        (name if name.startswith(heads) else prefix + name): np.zeros(shape, dtype) for name, shape in required.items()
    }


def weights_findings(tmp_path, tensors, config=CONFIG):
    save_file(tensors, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(config))
    findings = check_weights(
        "config.json", tmp_path / "config.json", {"model.safetensors": tmp_path / "model.safetensors"}
    )
    return [(f.file, f.rule, f.message) for f in findings]


def test_the_tensors_gpt2_implies_pass(tmp_path):
    assert weights_findings(tmp_path, gpt2_tensors()) == []


def test_gpt2s_original_hub_layout_passes_unprefixed_with_its_mask_buffers_and_lm_head(tmp_path):
    tensors = gpt2_tensors(prefix="")
    tensors |= {f"h.{i}.attn.bias": np.ones((1, 1, 16, 16), np.float32) for i in range(2)}
    tensors |= {"h.0.attn.masked_bias": np.array(-1e4, np.float32), "lm_head.weight": np.zeros((11, 8), np.float32)}
    assert weights_findings(tmp_path, tensors) == []


def test_a_classifier_needs_its_score_head_sized_by_its_labels(tmp_path):
    config = {
        **CONFIG,
        "architectures": ["GPT2ForSequenceClassification"],
        "id2label": {"0": "no", "1": "yes", "2": "maybe"},
    }
    assert weights_findings(tmp_path, gpt2_tensors(config), config) == []
    assert expected_tensors(config)[0]["score.weight"] == (3, 8)


def test_a_wrong_shape_is_named_with_what_the_config_implies(tmp_path):
    tensors = gpt2_tensors()
    tensors["transformer.h.1.mlp.c_fc.bias"] = np.zeros(31, np.float32)
    assert weights_findings(tmp_path, tensors) == [
        (
            "model.safetensors",
            "safetensors",
            "tensor transformer.h.1.mlp.c_fc.bias has shape [31]; config.json implies [32]",
        )
    ]


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    tensors = gpt2_tensors()
    del tensors["transformer.ln_f.bias"]
    tensors["transformer.h.2.ln_1.weight"] = np.zeros(8, np.float32)  # a third layer: n_layer says 2
    assert weights_findings(tmp_path, tensors) == [
        (
            "model.safetensors",
            "safetensors",
            "unexpected tensor transformer.h.2.ln_1.weight [8] for the architecture in config.json",
        ),
        ("config.json", "safetensors", "the weights lack 1 tensor(s) it implies: transformer.ln_f.bias"),
    ]


def test_weights_must_be_floating_point(tmp_path):
    tensors = gpt2_tensors()
    tensors["transformer.wpe.weight"] = tensors["transformer.wpe.weight"].astype(np.int64)
    assert weights_findings(tmp_path, tensors) == [
        ("model.safetensors", "safetensors", "tensor transformer.wpe.weight is I64; weights must be floating point")
    ]


@pytest.mark.parametrize(
    "config, reason",
    [
        ({**CONFIG, "model_type": "llama"}, "model_type 'llama'; the scan knows GPT-2"),
        ({**CONFIG, "architectures": ["GPT2DoubleHeadsModel"]}, "architectures ['GPT2DoubleHeadsModel']"),
        ({k: v for k, v in CONFIG.items() if k != "n_embd"}, "lacks a whole-number n_layer, n_embd"),
    ],
)
def test_a_config_the_scan_cannot_read_is_a_finding(tmp_path, config, reason):
    [(file, rule, message)] = weights_findings(tmp_path, gpt2_tensors(), config)
    assert (file, rule) == ("config.json", "safetensors") and reason in message


def header_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x01\x02", "shorter than a safetensors header"),
        (struct.pack("<Q", 10**9) + b"{}", "does not fit"),
        (struct.pack("<Q", 3) + b"abc", "not JSON"),
        (
            header_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4),
            "4 bytes for shape [2]",
        ),
        (
            header_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
            "gap or overlap at byte 0",
        ),
        (
            header_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),
            "cover 4 bytes of data but the file holds 8",
        ),
        (header_bytes({"w": {"dtype": "X9", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "no valid dtype"),
    ],
    ids=["short", "header-too-long", "not-json", "size", "gap", "trailing-bytes", "dtype"],
)
def test_malformed_files_are_not_safetensors(tmp_path, content, reason):
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(HeaderError, match=re.escape(reason)):
        read_header(path)

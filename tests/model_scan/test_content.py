"""content: a file is told by its bytes, never by its name."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
import torch

from distilgpt2_asset.model_scan.content import WINDOW, content_findings, is_pickle, sniff

from .dangers import RunsACommand


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickles_of_every_protocol_are_pickles(protocol, tmp_path):
    assert is_pickle(pickle.dumps({"weights": [1.0, 2.0], "name": "gpt2"}, protocol=protocol))
    assert is_pickle(pickle.dumps(RunsACommand(tmp_path / "never"), protocol=protocol))


def test_a_pickle_cut_short_after_its_import_is_still_a_pickle():
    # The unpickler would already have imported posix.system and called it when the bytes end.
    assert is_pickle(b"cposix\nsystem\n(S'id'\ntR")
    assert is_pickle(b"\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R")  # no PROTO opcode


def test_a_big_pickle_is_recognised_from_its_first_window():
    data = pickle.dumps(b"x" * (2 * WINDOW) + b"tail", protocol=4)
    assert is_pickle(data[:WINDOW])


@pytest.mark.parametrize(
    "data",
    [
        b'{"model_type": "gpt2"}',
        b"#version: 0.2\n\xc4\xa0 t\n",
        b"artifact_path: model\nflavors:\n  python_function: {}\n",
        b"channels:\n- conda-forge\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        np.random.default_rng(0).standard_normal(4096).astype(np.float32).tobytes(),
        np.random.default_rng(1).integers(-128, 127, 4096, dtype=np.int8).tobytes(),
        b"",
    ],
    ids=["json", "merges", "mlmodel", "yaml", "png", "float32-tensor-data", "int8-tensor-data", "empty"],
)
def test_text_and_raw_tensor_data_are_not_pickles(data):
    assert not is_pickle(data)
    assert sniff(io.BytesIO(data)) is None


def test_sniff_keeps_the_stream_position():
    stream = io.BytesIO(b"junk" + pickle.dumps([1, 2]))
    stream.seek(4)
    assert sniff(stream) == "pickle" and stream.tell() == 4


def findings_for(tmp_path, name, data, mode=0o644):
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(mode)
    return [(f.rule, f.message) for f in content_findings(name, path)]


def test_a_torch_save_checkpoint_is_named_for_what_it_is(tmp_path):
    buffer = io.BytesIO()
    torch.save({"wte.weight": torch.zeros(2, 2)}, buffer)
    [(rule, message)] = findings_for(tmp_path, "pytorch_model.bin", buffer.getvalue())
    assert rule == "pickle"
    assert message.startswith("a PyTorch checkpoint (torch.save: a zip of pickles)") and "safetensors" in message


def test_the_legacy_torch_save_format_is_named_too(tmp_path):
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer, _use_new_zipfile_serialization=False)
    [(rule, message)] = findings_for(tmp_path, "model.pt", buffer.getvalue())
    assert rule == "pickle" and "legacy torch.save format" in message


def test_numpy_files_are_findings_only_with_python_objects(tmp_path):
    plain, objects = io.BytesIO(), io.BytesIO()
    np.save(plain, np.zeros(3))
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert findings_for(tmp_path, "plain.npy", plain.getvalue()) == []
    assert findings_for(tmp_path, "objects.npy", objects.getvalue()) == [
        (
            "pickle",
            "a NumPy array of Python objects (pickled): loading it can run arbitrary code; weights must be safetensors",
        )
    ]


def test_zip_archives_are_findings(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("arr_0.npy", b"")
    [(rule, message)] = findings_for(tmp_path, "weights.npz", buffer.getvalue())
    assert rule == "pickle" and message.startswith("a NumPy .npz archive")


def test_an_hdf5_keras_model_is_a_finding_with_a_lambda_layer(tmp_path):
    header = b"\x89HDF\r\n\x1a\n" + b"\x00" * 100
    config = b'{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}'
    assert findings_for(tmp_path, "dense.h5", header + b'{"class_name": "Dense"}') == []
    [(rule, message)] = findings_for(tmp_path, "tf_model.h5", header + config)
    assert rule == "pickle" and "Lambda layer" in message


def test_executables_are_findings_by_content_and_by_permission(tmp_path):
    assert [rule for rule, _ in findings_for(tmp_path, "helper", b"\x7fELF\x02\x01\x01")] == ["executable"]
    assert [rule for rule, _ in findings_for(tmp_path, "notes.txt", b"plain text", mode=0o755)] == ["executable"]
    assert findings_for(tmp_path, "run.sh", b"#!/bin/sh\n", mode=0o755) == [
        ("executable", "a script (#! line): a model folder holds no programs"),
        ("executable", "executable permission bits set (mode 755)"),
    ]


def test_a_pickle_without_proto_whose_import_comes_after_the_window_is_named(tmp_path):
    """The attack: a protocol-0 pickle opening with over a window of data, its import after it; modelscan
    (through our middleware) must read it as the pickle it is, not skip it."""
    from distilgpt2_asset.model_scan.third_party import run_modelscan

    data = pickle.dumps(["x" * (WINDOW + 4096), RunsACommand(tmp_path / "never")], protocol=0)
    assert data.index(b"system") > WINDOW
    assert is_pickle(data) and sniff(io.BytesIO(data)) == "pickle"
    assert [rule for rule, _ in findings_for(tmp_path, "notes.txt", data)] == ["pickle"]
    _, found = run_modelscan({"notes.txt": tmp_path / "notes.txt"})
    assert {(f.file, f.severity.name) for f in found} >= {("notes.txt", "CRITICAL")}
    assert not (tmp_path / "never").exists()

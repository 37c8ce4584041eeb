"""third_party: ProtectAI modelscan as a library, with the pickle family told by content."""

from __future__ import annotations

import pickle

import numpy as np
import torch

from distilgpt2_asset.model_scan import Severity
from distilgpt2_asset.model_scan.third_party import run_modelscan

from .dangers import RunsACommand


def test_a_pickle_that_runs_a_command_is_critical_whatever_its_name(tmp_path):
    for name in ("evil.pkl", "model.safetensors", "weights"):
        (tmp_path / name).write_bytes(pickle.dumps(RunsACommand(tmp_path / "never")))
    run, findings = run_modelscan({path.name: path for path in tmp_path.iterdir()})
    assert sorted((f.file, f.severity, f.message) for f in findings) == [
        (name, Severity.CRITICAL, "Use of unsafe operator 'system' from module 'posix'")
        for name in ("evil.pkl", "model.safetensors", "weights")
    ]
    assert sorted(run.scanned) == ["evil.pkl", "model.safetensors", "weights"]
    assert not (tmp_path / "never").exists()


def test_raw_tensor_data_named_bin_is_skipped_not_parsed_as_pytorch(tmp_path):
    path = tmp_path / "openvino_model.bin"
    path.write_bytes(np.random.default_rng(3).standard_normal(1 << 14).astype(np.float32).tobytes())
    run, findings = run_modelscan({"engines/openvino-int8/openvino_model.bin": path})
    assert findings == []
    assert run.skipped == (("engines/openvino-int8/openvino_model.bin", "Model Scan did not scan file"),)


def test_a_pytorch_checkpoints_pickles_are_read_member_by_member(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    run, findings = run_modelscan({"model/pytorch_model.bin": tmp_path / "pytorch_model.bin"})
    assert findings == []  # torch's own rebuild functions are not unsafe operators
    assert run.scanned == ("model/pytorch_model.bin:pytorch_model/data.pkl",)
    assert run.version == "0.8.8"


def test_a_file_modelscan_cannot_read_is_a_medium_finding(tmp_path):
    (tmp_path / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    _, [finding] = run_modelscan({"tf_model.h5": tmp_path / "tf_model.h5"})
    assert (finding.file, finding.rule, finding.severity) == ("tf_model.h5", "modelscan", Severity.MEDIUM)
    assert finding.message.startswith("modelscan could not scan it (DEPENDENCY)")

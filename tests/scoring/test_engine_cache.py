"""The engine cache: private, keyed by the verified digest, one conversion however many processes start together."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from distilgpt2_scoring.engines.cache import cached_conversion, private_folder
from distilgpt2_scoring.model_files import ModelFilesError


def test_the_cache_folder_is_made_private_and_tightened_when_too_open(tmp_path):
    cache = private_folder(tmp_path / "cache")
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    os.chmod(cache, 0o777)
    private_folder(cache)
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700


def test_a_cache_folder_of_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    with pytest.raises(ModelFilesError, match="belongs to uid"):
        private_folder(tmp_path)


def test_a_damaged_entry_is_made_again(tiny_mlflow_model, tmp_path):
    weights = tiny_mlflow_model / "model"
    entry = cached_conversion(tmp_path, "key", "openvino", weights)
    (entry / "openvino_model.xml").write_text("<damaged/>")
    assert cached_conversion(tmp_path, "key", "openvino", weights) == entry
    assert "<damaged/>" not in (entry / "openvino_model.xml").read_text()


def test_two_processes_starting_together_convert_once_and_both_get_the_entry(tiny_mlflow_model, tmp_path):
    script = textwrap.dedent(
        f"""
        import logging, sys
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from pathlib import Path
        from distilgpt2_scoring.engines.cache import cached_conversion
        print(cached_conversion(Path({str(tmp_path / "cache")!r}), "key", "openvino", Path({str(tiny_mlflow_model / "model")!r})))
        """
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]  # the same entry
    assert sum("converted in" in err for _, err in outputs) == 1  # made once; the other waited for it
    assert not [p for p in (tmp_path / "cache").iterdir() if ".partial" in p.name]

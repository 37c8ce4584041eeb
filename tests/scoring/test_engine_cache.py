"""The engine cache: private, trusting only what it made, bound to its sources, one conversion however many
processes start together."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from distilgpt2_scoring.engines.cache import cached_conversion, private_folder, sources_sha256
from distilgpt2_scoring.model_files import ModelFilesError


def test_the_cache_folder_is_made_private(tmp_path):
    cache = private_folder(tmp_path / "cache")
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700


def test_a_cache_folder_once_open_to_others_is_refused_never_tightened(tmp_path):
    """The attack: a folder of ours that was group- or world-writable was chmod'ed 0700 and its entries trusted."""
    cache = private_folder(tmp_path / "cache")
    os.chmod(cache, 0o777)
    with pytest.raises(ModelFilesError, match="has mode 777, not 700"):
        private_folder(cache)
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o777  # left as found


def test_a_symlinked_cache_folder_is_refused(tmp_path):
    private_folder(tmp_path / "real")
    (tmp_path / "cache").symlink_to(tmp_path / "real")
    with pytest.raises(ModelFilesError, match="is a symbolic link"):
        private_folder(tmp_path / "cache")


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
        cache, weights = Path({str(tmp_path / "cache")!r}), Path({str(tiny_mlflow_model / "model")!r})
        print(cached_conversion(cache, "key", "openvino", weights))
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


@pytest.fixture
def cached_entry(tiny_mlflow_model, tmp_path):
    weights = tiny_mlflow_model / "model"
    return cached_conversion(tmp_path / "cache", "key", "openvino", weights), weights


def test_an_entry_is_bound_to_the_files_it_was_made_from(cached_entry, tmp_path):
    """The attack: an entry made from other weights, under the pinned digest's key with a good manifest, was served."""
    entry, weights = cached_entry
    other = shutil.copytree(weights, tmp_path / "other-weights")
    (other / "generation_config.json").write_text('{"eos_token_id": 0}')
    assert cached_conversion(tmp_path / "cache", "key", "openvino", other) == entry  # made again: other sources
    assert json.loads((entry / "origin.json").read_text()) == {"key": "key", "sources": sources_sha256((other,))}
    cached_conversion(tmp_path / "cache", "key", "openvino", weights)
    assert json.loads((entry / "origin.json").read_text())["sources"] == sources_sha256((weights,))


@pytest.mark.parametrize(
    "plant",
    [
        lambda entry: os.chmod(entry, 0o755),
        lambda entry: os.chmod(entry / "openvino_model.xml", 0o666),
        lambda entry: (
            (entry / "openvino_model.xml").unlink() or (entry / "openvino_model.xml").symlink_to("/etc/passwd")
        ),
    ],
    ids=["entry-not-0700", "file-writable-by-others", "symlinked-file"],
)
def test_an_entry_this_server_did_not_make_is_refused(cached_entry, tmp_path, plant):
    entry, weights = cached_entry
    plant(entry)
    with pytest.raises(ModelFilesError, match="engine cache entry"):
        cached_conversion(tmp_path / "cache", "key", "openvino", weights)


def test_an_entry_of_another_user_is_refused(cached_entry, tmp_path, monkeypatch):
    entry, weights = cached_entry
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        info = real_lstat(path, *args, **kwargs)
        if str(path).startswith(str(entry)):
            values = list(info)
            values[stat.ST_UID] += 1
            return os.stat_result(values)
        return info

    monkeypatch.setattr(os, "lstat", lstat)
    with pytest.raises(ModelFilesError, match="belongs to uid"):
        cached_conversion(tmp_path / "cache", "key", "openvino", weights)


def test_a_symlinked_entry_is_refused(tiny_mlflow_model, tmp_path):
    weights = tiny_mlflow_model / "model"
    elsewhere = cached_conversion(tmp_path / "elsewhere", "key", "openvino", weights)
    cache = private_folder(tmp_path / "cache")
    (cache / "key").symlink_to(elsewhere)
    with pytest.raises(ModelFilesError, match="is a symbolic link"):
        cached_conversion(cache, "key", "openvino", weights)

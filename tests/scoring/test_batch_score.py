"""scoring/batch_score.py as Azure's batch driver calls it: init() once, run(mini_batch of file paths)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from distilgpt2_asset.paths import scoring_dir


@pytest.fixture
def batch_score(monkeypatch, tiny_mlflow_model, engine_cache):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tiny_mlflow_model))
    monkeypatch.setenv("TEXTGEN_CACHE_DIR", str(engine_cache))
    monkeypatch.setenv("BATCH_PARAMS", json.dumps({"max_new_tokens": 4, "do_sample": False}))
    spec = importlib.util.spec_from_file_location("batch_score_under_test", scoring_dir() / "batch_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    if module.scorer is not None:
        module.scorer.service.close()


def test_a_mini_batch_of_files_gives_one_json_line_per_row_in_order_naming_file_and_line(
    batch_score, tmp_path, monkeypatch
):
    monkeypatch.setenv("BATCH_TEXT_COLUMN", "prompt")
    jsonl, csv_file, empty = tmp_path / "a.jsonl", tmp_path / "b.csv", tmp_path / "c.jsonl"
    jsonl.write_text('{"prompt": "The quick brown fox", "id": "q1"}\n{"prompt": "x", "params": {"top_p": 5}}\n')
    csv_file.write_text("id,prompt\n9,A small language model can\n")
    empty.write_text("")
    batch_score.init()
    rows = [json.loads(line) for line in batch_score.run([str(jsonl), str(csv_file), str(empty)])]
    assert [(r["file"], r["line"], r["id"], "error" in r) for r in rows] == [
        ("a.jsonl", 1, "q1", False), ("a.jsonl", 2, None, True), ("b.csv", 2, "9", False), ("c.jsonl", 0, None, True),
    ]  # fmt: skip
    assert rows[0]["generated_text"].startswith("The quick brown fox") and rows[0]["completion_tokens"] == 4
    assert rows[1]["field"] == "params.top_p"


def test_bad_job_params_stop_init_before_any_file(batch_score, monkeypatch):
    monkeypatch.setenv("BATCH_PARAMS", "[1, 2]")
    with pytest.raises(ValueError, match="BATCH_PARAMS must be a JSON object"):
        batch_score.init()
    assert batch_score.scorer is None

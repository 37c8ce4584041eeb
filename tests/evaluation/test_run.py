"""`distilgpt2-asset evaluate` end to end on the tiny trained model, through the serving code."""

import json

import pytest

from distilgpt2_asset.cli import main
from distilgpt2_asset.paths import PACKAGE_DATA

CORPUS_LINES = [line for line in (PACKAGE_DATA / "tiny-corpus.txt").read_text().splitlines() if line.strip()]
SAMPLE = PACKAGE_DATA / "evaluation" / "sample.jsonl"
PERPLEXITY_TEXT = PACKAGE_DATA / "evaluation" / "perplexity.txt"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


@pytest.fixture(scope="module")
def corpus_rows(tmp_path_factory):
    """The tiny model's training sentences: the first six words are the prompt, the sentence the truth."""
    folder = tmp_path_factory.mktemp("data")
    records = [{"prompt": " ".join(line.split()[:6]), "truth": line} for line in CORPUS_LINES]
    return write_jsonl(folder / "corpus.jsonl", records)


@pytest.fixture(scope="module")
def report(tiny_mlflow_model, corpus_rows, tmp_path_factory):
    """One run: the tiny model against itself, custom column names, perplexity of its corpus."""
    output = tmp_path_factory.mktemp("reports") / "corpus"
    code = main([
        "evaluate", "--model", str(tiny_mlflow_model), "--compare-model", str(tiny_mlflow_model),
        "--data", str(corpus_rows), "--input-column", "prompt", "--label-column", "truth",
        "--perplexity-text", str(PACKAGE_DATA / "tiny-corpus.txt"), "--engine", "transformers",
        "--batch-size", "3", "--output", str(output),
    ])  # fmt: skip
    assert code == 0
    return output


@pytest.fixture(scope="module")
def metrics(report):
    return json.loads((report / "metrics.json").read_text())


def test_writes_metrics_predictions_and_a_chart(report):
    assert sorted(p.name for p in report.iterdir()) == ["metrics.json", "metrics.png", "predictions.jsonl"]
    assert (report / "metrics.png").read_bytes().startswith(b"\x89PNG")
    assert not list(report.parent.glob(".*partial*"))


def test_a_model_that_reproduces_its_corpus_scores_one_on_every_metric(metrics):
    assert set(metrics["model"]["metrics"]) == {
        "rouge1", "rouge2", "rougeL", "rougeLsum", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "perplexity",
    }  # fmt: skip
    for name, value in metrics["model"]["metrics"].items():
        if name != "perplexity":
            assert value == pytest.approx(1.0), name


def test_records_data_settings_and_definitions(metrics, corpus_rows):
    assert metrics["task"] == "text-generation"
    assert metrics["data"]["rows"] == len(CORPUS_LINES)
    assert (metrics["data"]["input_column"], metrics["data"]["label_column"]) == ("prompt", "truth")
    generation = metrics["model"]["generation"]
    assert generation["engine"] == "transformers"
    # Greedy by default; the rest are the model's signature defaults (max_new_tokens 50).
    assert generation["params"]["do_sample"] is False
    assert generation["params"]["max_new_tokens"] == 50
    assert "cumulative" in metrics["definitions"]["bleu_n"]
    assert metrics["model"]["perplexity"]["tokens_scored"] > 100


def test_two_models_are_compared_side_by_side(metrics, report):
    assert metrics["compare_model"]["metrics"] == metrics["model"]["metrics"]
    assert all(value == 0 for value in metrics["difference"].values())
    first = json.loads((report / "predictions.jsonl").read_text().splitlines()[0])
    assert first["line"] == 1
    assert first["ground_truth"] == CORPUS_LINES[0]
    assert first["prediction"] == first["compare_prediction"] == CORPUS_LINES[0]
    assert first["rougeL"] == first["compare_rougeL"] == pytest.approx(1.0)


def test_prints_a_table(tiny_mlflow_model, tmp_path, capsys):
    code = main([
        "evaluate", "--model", str(tiny_mlflow_model), "--data", str(SAMPLE), "--limit", "4",
        "--params", '{"max_new_tokens": 8, "return_full_text": false}', "--engine", "transformers",
        "--perplexity-text", str(PERPLEXITY_TEXT), "--output", str(tmp_path / "sample"),
    ])  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "rouge1" in table and "bleu_4" in table and "perplexity" in table
    metrics = json.loads((tmp_path / "sample" / "metrics.json").read_text())
    assert metrics["data"]["rows"] == 4
    # Unseen text: the continuation alone overlaps little, and the text is unlikely under the model.
    assert metrics["model"]["metrics"]["rougeL"] < 0.5
    assert metrics["model"]["metrics"]["perplexity"] > 100
    assert "compare_model" not in metrics


def test_default_engine_is_the_serving_default(tiny_mlflow_model, corpus_rows, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTGEN_CACHE_DIR", str(tmp_path / "cache"))
    code = main([
        "evaluate", "--model", str(tiny_mlflow_model), "--data", str(corpus_rows), "--limit", "2",
        "--input-column", "prompt", "--label-column", "truth", "--output", str(tmp_path / "out"),
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["model"]["generation"]["engine"] == "openvino"  # the CPU default


def run_failing(args, capsys) -> str:
    assert main(["evaluate", *args]) == 2
    return capsys.readouterr().err


def test_bad_data_is_one_clear_error_and_writes_nothing(tiny_mlflow_model, tmp_path, capsys):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"input_string": "a", "ground_truth": "b"}, {"text": "c"}])
    output = tmp_path / "out"
    err = run_failing(["--model", str(tiny_mlflow_model), "--data", str(data), "--output", str(output)], capsys)
    assert err.startswith(f"error: {data}:2: no column 'input_string'")
    assert "Traceback" not in err
    assert not output.exists()


def test_a_prompt_the_service_refuses_names_its_row_and_leaves_no_partial_report(tiny_mlflow_model, tmp_path, capsys):
    too_long = "word " * 1100  # over the 1024-token context
    records = [{"input_string": "Hello", "ground_truth": "x"}] * 2 + [{"input_string": too_long, "ground_truth": "x"}]
    data = write_jsonl(tmp_path / "long.jsonl", records)
    output = tmp_path / "out"
    err = run_failing([
        "--model", str(tiny_mlflow_model), "--data", str(data), "--output", str(output), "--engine", "transformers",
        "--batch-size", "2",
    ], capsys)  # fmt: skip
    assert f"{data}:3:" in err and "token" in err
    assert list(tmp_path.iterdir()) == [data]


def test_bad_params_are_named(tiny_mlflow_model, tmp_path, capsys):
    base = ["--model", str(tiny_mlflow_model), "--data", str(SAMPLE), "--output", str(tmp_path / "o")]
    assert "--params is not valid JSON" in run_failing([*base, "--params", "{max_new_tokens: 3}"], capsys)
    err = run_failing([*base, "--params", '{"temperature": 0, "do_sample": true}', "--engine", "transformers"], capsys)
    assert "temperature" in err


def test_an_output_folder_holding_other_files_is_refused_before_any_work(tiny_mlflow_model, tmp_path, capsys):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    err = run_failing(["--model", str(tiny_mlflow_model), "--data", str(SAMPLE), "--output", str(output)], capsys)
    assert "notes.txt" in err
    assert (output / "notes.txt").read_text() == "keep me"


def test_a_folder_without_a_model_is_refused(tmp_path, capsys):
    err = run_failing(["--model", str(tmp_path), "--data", str(SAMPLE), "--output", str(tmp_path / "o")], capsys)
    assert "MLmodel" in err

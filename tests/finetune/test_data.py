"""Bad datasets are refused before training, with the file, line and column named."""

from __future__ import annotations

import pytest

from distilgpt2_asset.cli import main
from distilgpt2_asset.finetune.data import DatasetError, check_labels, label_names, load_examples, split

from .conftest import toy_rows, write_jsonl


def jsonl(tmp_path, lines: list[str], name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_and_csv_give_the_same_examples(tmp_path):
    from_jsonl = load_examples(
        jsonl(tmp_path, ['{"text": "a b", "label": "x"}', '{"text": "c, d", "label": 3}']), "text", "label"
    )
    csv_file = tmp_path / "data.csv"
    csv_file.write_text('label,text\nx,a b\n3,"c, d"\n', encoding="utf-8")
    from_csv = load_examples(csv_file, "text", "label")
    assert (from_jsonl.texts, from_jsonl.labels) == (from_csv.texts, from_csv.labels) == (("a b", "c, d"), ("x", "3"))


def test_a_missing_column_is_named_with_the_columns_there_are(tmp_path):
    with pytest.raises(DatasetError, match=r"line 1: no 'text' column \(columns: sentence, label"):
        load_examples(jsonl(tmp_path, ['{"sentence": "hi", "label": "x"}']), "text", "label")
    csv_file = tmp_path / "data.csv"
    csv_file.write_text("sentence,label\nhi,x\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"no column 'text' in the header; columns are: sentence, label"):
        load_examples(csv_file, "text", "label")


def test_empty_text_and_bad_labels_are_reported_by_line(tmp_path):
    lines = [
        '{"text": "fine", "label": "x"}',
        '{"text": "  ", "label": "x"}',
        '{"text": "ok", "label": null}',
        "not json",
    ]
    with pytest.raises(DatasetError) as caught:
        load_examples(jsonl(tmp_path, lines), "text", "label")
    message = str(caught.value)
    assert "line 2: empty text in 'text'" in message
    assert "line 3: label 'label' must be a string or a whole number, got null" in message
    assert "line 4: not valid JSON" in message


def test_non_utf8_files_are_refused_with_the_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"text,label\nfine,x\ncaf\xe9,y\n")
    with pytest.raises(DatasetError, match=r"not UTF-8 text \(byte 0xe9 on line 3\)"):
        load_examples(path, "text", "label")


def test_a_single_class_is_refused(tmp_path):
    examples = load_examples(
        jsonl(tmp_path, ['{"text": "a", "label": "x"}', '{"text": "b", "label": "x"}']), "text", "label"
    )
    with pytest.raises(
        DatasetError, match=r"only one class \('x'\); a classifier needs examples of at least two labels"
    ):
        label_names(examples, None)


def test_a_label_outside_the_label_list_is_named(tmp_path):
    examples = load_examples(
        jsonl(tmp_path, ['{"text": "a", "label": "x"}', '{"text": "b", "label": "z"}']), "text", "label"
    )
    with pytest.raises(DatasetError, match=r"label\(s\) 'z' not in the label list \[x, y\]"):
        check_labels(examples, label_names(examples, ["x", "y"]))


def test_the_validation_split_is_seeded_and_stratified(tmp_path):
    examples = load_examples(write_jsonl(tmp_path / "t.jsonl", toy_rows(40, 3)), "text", "label")
    train, held = split(examples, 0.25, seed=5)
    assert split(examples, 0.25, seed=5) == (train, held)
    assert len(held) == 10 and sorted(set(held.labels)) == ["software", "water"]
    assert held.labels.count("water") == 5


def test_unsupported_files_are_refused(tmp_path):
    with pytest.raises(DatasetError, match=r"unsupported file type .parquet; use .jsonl or .csv"):
        load_examples(tmp_path / "data.parquet", "text", "label")


def test_the_cli_prints_one_error_line_and_exits_2(tmp_path, capsys, isolated_home):
    train = jsonl(tmp_path, ['{"text": "a", "label": "x"}', '{"text": "b", "label": "x"}'])
    assert main(["finetune", "--train", str(train), "--output", str(tmp_path / "out"), "--source", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "only one class" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()

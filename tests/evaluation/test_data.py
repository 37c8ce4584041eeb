"""Evaluation data: JSONL rows, every problem named by file and 1-based line; the shipped sample."""

import json

import pytest

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.evaluation.data import read_evaluation_rows, read_utf8_text
from distilgpt2_asset.paths import PACKAGE_DATA

SAMPLE = PACKAGE_DATA / "evaluation" / "sample.jsonl"
GOOD = json.dumps({"input_string": "Once upon a time", "ground_truth": "Once upon a time there was a king."})


def write(tmp_path, content: bytes):
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    return path


def error_for(path, **kwargs) -> str:
    with pytest.raises(AssetError) as info:
        read_evaluation_rows(path, **kwargs)
    return str(info.value)


def test_rows_keep_their_line_numbers_and_skip_blank_lines(tmp_path):
    path = write(tmp_path, f"{GOOD}\n\n{GOOD}\r\n".encode())
    rows = read_evaluation_rows(path)
    assert [row.line for row in rows] == [1, 3]
    assert rows[0].prompt == "Once upon a time"
    assert rows[0].ground_truth.endswith("king.")


def test_column_names_are_configurable_and_limit_stops_early(tmp_path):
    lines = [json.dumps({"q": f"prompt {i}", "a": f"answer {i}"}) for i in range(5)] + ["not json"]
    path = write(tmp_path, "\n".join(lines).encode())
    rows = read_evaluation_rows(path, input_column="q", label_column="a", limit=3)
    assert [row.prompt for row in rows] == ["prompt 0", "prompt 1", "prompt 2"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + GOOD.encode())
    assert read_evaluation_rows(path)[0].prompt == "Once upon a time"


def test_missing_column_names_file_line_and_the_columns_present(tmp_path):
    path = write(tmp_path, f'{GOOD}\n{{"prompt": "x", "ground_truth": "y"}}\n'.encode())
    message = error_for(path)
    assert f"{path}:2:" in message
    assert "'input_string'" in message and "prompt" in message


def test_missing_label_column(tmp_path):
    path = write(tmp_path, b'{"input_string": "x"}\n')
    assert f"{path}:1: no column 'ground_truth'" in error_for(path)


def test_empty_file(tmp_path):
    path = write(tmp_path, b"\n  \n")
    message = error_for(path)
    assert str(path) in message and "empty" in message


def test_non_utf8_line_names_line_and_byte(tmp_path):
    path = write(tmp_path, GOOD.encode() + b'\n{"input_string": "caf\xe9", "ground_truth": "x"}\n')
    message = error_for(path)
    assert f"{path}:2:" in message and "UTF-8" in message and "0xe9" in message


def test_invalid_json(tmp_path):
    path = write(tmp_path, f"{GOOD}\n{GOOD}\n{{'input_string': 1}}\n".encode())
    message = error_for(path)
    assert f"{path}:3: not valid JSON" in message


@pytest.mark.parametrize(
    "line, problem",
    [
        ('["a", "b"]', "expected a JSON object"),
        ('{"input_string": 3, "ground_truth": "x"}', "must be a string, got int"),
        ('{"input_string": "  ", "ground_truth": "x"}', "'input_string' is empty"),
        ('{"input_string": "x", "ground_truth": null}', "must be a string, got NoneType"),
    ],
)
def test_wrong_shapes_are_named(tmp_path, line, problem):
    path = write(tmp_path, f"{GOOD}\n{line}\n".encode())
    message = error_for(path)
    assert f"{path}:2:" in message and problem in message


def test_missing_file(tmp_path):
    assert "no such data file" in error_for(tmp_path / "nope.jsonl")


def test_text_file_with_a_bad_byte_names_its_line(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(AssetError, match=r"text\.txt:3: not valid UTF-8"):
        read_utf8_text(path)


def test_shipped_sample_has_the_shape_of_the_card_evaluation_data():
    # As prepared from cnn_dailymail: the prompt is the first 100 characters of the ground truth.
    rows = read_evaluation_rows(SAMPLE)
    assert len(rows) >= 20
    for row in rows:
        assert row.prompt == row.ground_truth[:100]
        assert len(row.ground_truth) > 200
    readme = (SAMPLE.parent / "README.md").read_text()
    assert "Apache-2.0" in readme and "written for this project" in readme

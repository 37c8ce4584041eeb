"""`distilgpt2-asset generate`: bulk generation on the batch scoring code, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distilgpt2_asset.bulk_generation import GenerateOptions, done_rows, generate, input_files
from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError

PARAMS = {"max_new_tokens": 4, "do_sample": False, "return_full_text": False}
ROOT = Path(__file__).resolve().parents[1]


def prompts_file(path: Path, count: int, start: int = 0) -> Path:
    path.write_text(
        "".join(json.dumps({"prompt": f"The quick brown fox {i}", "id": i}) + "\n" for i in range(start, start + count))
    )
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def keys(rows) -> list[tuple[str, int]]:
    return [(row["file"], row["line"]) for row in rows]


def test_every_file_under_a_folder_is_generated_in_order_and_bad_rows_go_to_the_errors_file(
    tiny_mlflow_model, tmp_path, isolated_home, capsys
):
    inputs = tmp_path / "inputs"
    (inputs / "more").mkdir(parents=True)
    prompts_file(inputs / "a.jsonl", 3)
    (inputs / "more" / "b.csv").write_text('text\n"The river runs past the mill,"\n')
    (inputs / "bad.jsonl").write_text(
        '{"prompt": "fine"}\n{"prompt": "x", "params": {"max_new_tokens": 0}}\nnot json\n'
    )
    (inputs / "notes.txt").write_text("not an input")
    output = tmp_path / "out" / "generated.jsonl"
    code = main(
        [
            "generate",
            "--model",
            str(tiny_mlflow_model),
            "--input",
            str(inputs),
            "--output",
            str(output),
            "--params",
            json.dumps(PARAMS),
        ]
    )
    assert code == 0
    rows, errors = read_jsonl(output), read_jsonl(tmp_path / "out" / "generated.errors.jsonl")
    assert keys(rows) == [("a.jsonl", 1), ("a.jsonl", 2), ("a.jsonl", 3), ("bad.jsonl", 1), ("more/b.csv", 2)]
    assert [r["id"] for r in rows[:3]] == [0, 1, 2] and all(r["completion_tokens"] == 4 for r in rows)
    assert [(e["file"], e["line"], e["field"]) for e in errors] == [
        ("bad.jsonl", 2, "params.max_new_tokens"),
        ("bad.jsonl", 3, None),
    ]
    summary = capsys.readouterr().out
    assert "5 rows generated, 2 errors; 20 tokens in" in summary and "tokens/s" in summary


def test_a_rerun_skips_every_row_already_written_and_appends_only_new_ones(tiny_mlflow_model, tmp_path, isolated_home):
    source, output = prompts_file(tmp_path / "in.jsonl", 5), tmp_path / "out.jsonl"
    options = GenerateOptions(params=PARAMS)
    first = generate(tiny_mlflow_model, source, output, options)
    prompts_file(source, 7)  # the same five rows and two more
    again = generate(tiny_mlflow_model, source, output, options)
    assert (first.rows, again.skipped, again.rows) == (5, 5, 2)
    assert keys(read_jsonl(output)) == [("in.jsonl", line) for line in range(1, 8)]


def test_a_line_torn_by_a_kill_mid_write_is_cut_and_that_row_generated_again(
    tiny_mlflow_model, tmp_path, isolated_home
):
    source, output = prompts_file(tmp_path / "in.jsonl", 3), tmp_path / "out.jsonl"
    generate(tiny_mlflow_model, source, output, GenerateOptions(params=PARAMS))
    lines = output.read_text().splitlines(keepends=True)
    output.write_text(lines[0] + lines[1][:20])  # the second row half written
    generate(tiny_mlflow_model, source, output, GenerateOptions(params=PARAMS))
    assert keys(read_jsonl(output)) == [("in.jsonl", 1), ("in.jsonl", 2), ("in.jsonl", 3)]


def test_the_servers_faults_are_retried_by_a_rerun_and_final_errors_are_kept(tmp_path):
    output, errors = tmp_path / "out.jsonl", tmp_path / "out.errors.jsonl"
    output.write_text(json.dumps({"file": "f", "line": 1}) + "\n")
    errors.write_text(
        json.dumps({"file": "f", "line": 2, "error": "deadline", "retryable": True})
        + "\n"
        + json.dumps({"file": "f", "line": 3, "error": "bad params", "retryable": False})
        + "\n"
    )
    assert done_rows(output, errors) == {("f", 1), ("f", 3)}
    assert keys(read_jsonl(errors)) == [("f", 3)]  # the retried row will be written once, wherever it lands


def test_a_rerun_with_other_settings_is_refused_instead_of_mixing_outputs(tiny_mlflow_model, tmp_path, isolated_home):
    source, output = prompts_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    generate(tiny_mlflow_model, source, output, GenerateOptions(params=PARAMS))
    with pytest.raises(AssetError, match="was made with another params"):
        generate(tiny_mlflow_model, source, output, GenerateOptions(params={**PARAMS, "max_new_tokens": 5}))


def test_an_existing_file_that_generate_did_not_write_is_never_appended_to(tmp_path):
    source, output = prompts_file(tmp_path / "in.jsonl", 2), tmp_path / "notes.jsonl"
    output.write_text("my own notes\n")
    with pytest.raises(AssetError, match="is not the output of distilgpt2-asset generate"):
        generate(tmp_path / "no-model", source, output)
    assert output.read_text() == "my own notes\n"


@pytest.mark.parametrize("argv_tail, message", [
    (["--params", "[1]"], "--params must be a JSON object"),
    (["--input", "missing.jsonl"], "--input missing.jsonl: no such file or folder"),
])  # fmt: skip
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv_tail, message):
    monkeypatch.chdir(tmp_path)
    prompts_file(tmp_path / "in.jsonl", 1)
    argv = ["generate", "--model", "m", "--input", "in.jsonl", "--output", "out.jsonl", *argv_tail]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_output_and_errors_inside_the_input_folder_are_not_read_as_inputs(
    tiny_mlflow_model, tmp_path, isolated_home
):
    prompts_file(tmp_path / "in.jsonl", 2)
    (tmp_path / "broken.jsonl").write_text("not json\n")
    for _ in range(2):  # the second run finds out.jsonl and out.errors.jsonl beside the input
        summary = generate(tiny_mlflow_model, tmp_path, tmp_path / "out.jsonl", GenerateOptions(params=PARAMS))
    assert [label for _, label in input_files(tmp_path)] == [
        "broken.jsonl",
        "in.jsonl",
        "out.errors.jsonl",
        "out.jsonl",
    ]
    assert (summary.rows, summary.errors, summary.skipped) == (0, 0, 3)
    assert keys(read_jsonl(tmp_path / "out.jsonl")) == [("in.jsonl", 1), ("in.jsonl", 2)]


def test_a_kill_mid_run_then_a_rerun_gives_every_row_exactly_once(tiny_mlflow_model, tmp_path, isolated_home):
    source, output = prompts_file(tmp_path / "in.jsonl", 300), tmp_path / "out.jsonl"
    command = [
        sys.executable,
        "-m",
        "distilgpt2_asset.cli",
        "generate",
        "--model",
        str(tiny_mlflow_model),
        "--input",
        str(source),
        "--output",
        str(output),
        "--params",
        json.dumps({**PARAMS, "max_new_tokens": 24}),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "scoring"), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while process.poll() is None and not (output.exists() and output.read_bytes().count(b"\n") >= 40):
            time.sleep(0.05)  # until the run is well under way
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()[-2000:]
    written_before_rerun = len(read_jsonl(output)) if output.read_bytes().endswith(b"\n") else None
    assert written_before_rerun is None or written_before_rerun < 300  # killed mid-run, not after it
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = read_jsonl(output)
    assert keys(rows) == [("in.jsonl", line) for line in range(1, 301)]  # no duplicates, no gaps, in order
    assert [row["id"] for row in rows] == list(range(300))
    assert read_jsonl(tmp_path / "out.errors.jsonl") == []


def test_a_folder_that_is_no_model_is_one_line_and_exit_2(tmp_path, capsys, isolated_home):
    source = prompts_file(tmp_path / "in.jsonl", 1)
    argv = [
        "generate",
        "--model",
        str(tmp_path / "empty"),
        "--input",
        str(source),
        "--output",
        str(tmp_path / "out.jsonl"),
    ]
    (tmp_path / "empty").mkdir()
    assert main(argv) == 2
    assert "no MLflow model (an MLmodel file)" in capsys.readouterr().err


@pytest.mark.parametrize("planted", ["out.jsonl", "out.errors.jsonl", "out.jsonl.job.json"])
def test_a_symlink_planted_at_an_output_path_is_refused_and_its_target_untouched(tmp_path, planted):
    """The attack: generate followed planted symlinks at its output, state and errors paths."""
    source, output = prompts_file(tmp_path / "in.jsonl", 2), tmp_path / "out.jsonl"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / planted).symlink_to(victim)
    with pytest.raises(AssetError, match=f"{planted} is a symbolic link; generate reads and writes only its own"):
        generate(tmp_path / "no-model", source, output)
    assert victim.read_text() == "precious\n"


def test_its_files_are_opened_without_following_a_link(tmp_path):
    from distilgpt2_asset.bulk_generation import _open_own

    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")  # dangling: O_CREAT alone would create the target
    with pytest.raises(AssetError, match="is a symbolic link"):
        _open_own(tmp_path / "link", "a")
    assert not (tmp_path / "elsewhere").exists()

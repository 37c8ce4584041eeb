"""The benchmark's command line refuses a folder that holds no MLflow model, and counts below 1, before any work."""

from __future__ import annotations

import pytest

from distilgpt2_asset.bench.__main__ import main


@pytest.mark.parametrize("option", ["--model", "--finetuned"])
def test_a_folder_without_an_mlflow_model_is_refused_by_name(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["finetuned", option, str(tmp_path / "nowhere")])
    assert exited.value.code == 2
    assert f"no MLflow model (an MLmodel file) in {tmp_path / 'nowhere'}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["finetuned", "--repeats", "0"], ["observability", "--pairs", "0"], ["serving", "--clients", "-1"]]
)
def test_a_count_below_one_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert f"invalid positive_int value: '{argv[-1]}'" in capsys.readouterr().err

"""The `distilgpt2-asset` command line: build -> register -> load, and one clear line on errors."""

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def cli(*args, env_extra=None, timeout=600):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "distilgpt2_asset.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def _command_table() -> list[tuple[str, set[str]]]:
    """The README's command table: each row's command and the flags it shows."""
    text = README.read_text()
    table = text[text.index("## The command line") :]
    table = table[: table.index("\n\n", table.index("| command |"))]
    rows = [re.split(r"(?<!\\)\|", row)[1] for row in table.splitlines() if row.startswith("| `distilgpt2-asset ")]
    return [(row.split()[1].rstrip("`"), set(re.findall(r"--[a-z][a-z-]*", row))) for row in rows]


def test_the_readme_command_table_is_the_cli():
    """Every command, in `--help`'s order, and every flag the table shows is one the command takes."""
    from distilgpt2_asset.cli import parser

    [subcommands] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    table = _command_table()
    assert [command for command, _ in table] == list(subcommands.choices)
    for command, flags in table:
        taken = {flag for action in subcommands.choices[command]._actions for flag in action.option_strings}
        assert flags <= taken, f"{command}: the README shows {sorted(flags - taken)}, which it does not take"


def test_help_lists_every_command():
    out = cli("--help").stdout
    for command, _ in _command_table():
        assert command in out


def test_build_register_then_load_from_the_registry(tiny_model_dir, tmp_path):
    home = {"DISTILGPT2_ASSET_HOME": str(tmp_path / "home")}
    built = cli("build", "--source", str(tiny_model_dir), "--output", str(tmp_path / "m"), env_extra=home)
    assert built.returncode == 0, built.stderr
    assert f"built distilgpt2 15: {tmp_path / 'm'}" in built.stdout

    # A build of a local testing model becomes distilgpt2 15 only on purpose.
    refused = cli("register", "--model", str(tmp_path / "m"), env_extra=home)
    assert refused.returncode == 2 and "--allow-unpinned registers it anyway" in refused.stderr
    registered = cli("register", "--model", str(tmp_path / "m"), "--allow-unpinned", env_extra=home)
    assert registered.returncode == 0, registered.stderr
    assert "created: distilgpt2 15 as models:/distilgpt2/1" in registered.stdout
    again = cli("register", "--model", str(tmp_path / "m"), "--allow-unpinned", env_extra=home)
    assert "unchanged: distilgpt2 15" in again.stdout

    load = (
        "import mlflow; mlflow.set_registry_uri('sqlite:///{db}');"
        "print(mlflow.pyfunc.load_model('models:/distilgpt2/1').predict(['The river runs'],"
        " params={{'max_new_tokens': 4, 'do_sample': False, 'return_full_text': True}}))"
    ).format(db=tmp_path / "home" / "registry.db")
    loaded = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=300)
    assert "['The river runs past the mill,']" in loaded.stdout, loaded.stderr


def test_build_offline_without_a_source_is_one_clear_line(tmp_path):
    result = cli("build", "--output", str(tmp_path / "never"), env_extra={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: cannot fetch distilgpt2@38cc92ec4331")
    assert "--source DIR" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "never").exists()


def test_register_without_a_built_model_is_one_clear_line(tmp_path):
    result = cli("register", "--model", str(tmp_path / "missing"), env_extra={"DISTILGPT2_ASSET_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "error: no MLflow model" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["testing-model", "--shape", "gpt4", "--output", "x"], ["no-such-command"]])
def test_bad_arguments_are_refused_by_name(args):
    result = cli(*args)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_register_refuses_a_testing_build_left_in_the_default_folder(
    isolated_home, asset_spec, tiny_model_dir, tiny_mlflow_model, capsys
):
    import shutil

    from distilgpt2_asset.cli import main
    from distilgpt2_asset.registry import LocalRegistry

    shutil.copytree(tiny_mlflow_model, isolated_home / "models" / "distilgpt2-15")
    assert main(["register"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: {isolated_home / 'models' / 'distilgpt2-15'} is a build of the local folder {tiny_model_dir}, "
    )
    assert f"not spec.yaml's distilgpt2@{asset_spec.revision}: only that may become distilgpt2 15" in err
    assert "distilgpt2-asset serve --source DIR" in err
    assert LocalRegistry().find(asset_spec.name, asset_spec.version) is None


def test_register_takes_the_pinned_build_from_the_default_folder(isolated_home, pinned_mlflow_model, capsys):
    import shutil

    from distilgpt2_asset.cli import main

    shutil.copytree(pinned_mlflow_model, isolated_home / "models" / "distilgpt2-15")
    assert main(["register"]) == 0
    assert capsys.readouterr().out.startswith("created: distilgpt2 15 as models:/distilgpt2/1")

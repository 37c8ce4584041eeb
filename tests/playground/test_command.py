"""`distilgpt2-asset playground`: its arguments, and one clear line when it cannot start."""

from __future__ import annotations

import socket

from tests.test_cli import cli

from distilgpt2_asset.commands.playground import page_defaults


def test_the_page_starts_from_the_card_params_and_keeps_the_end_of_a_long_text(asset_spec):
    card = asset_spec.sample_request["params"]
    assert page_defaults(asset_spec.sample_request) == {
        "top_p": card["top_p"], "temperature": card["temperature"], "max_new_tokens": card["max_new_tokens"],
        "do_sample": card["do_sample"], "truncate": True,
    }  # fmt: skip


def test_help_shows_the_url_the_key_variable_and_the_port():
    out = " ".join(cli("playground", "--help").stdout.split())  # as one line, however argparse wraps it
    for words in ("--url", "--key-env VAR", "--port", "http://127.0.0.1:5001/score", "never reaches the browser"):
        assert words in out


def test_a_key_variable_that_is_not_set_stops_it_with_one_line():
    url = "https://x.inference.ml.azure.com/score"
    result = cli(
        "playground", "--url", url, "--key-env", "PLAYGROUND_UNSET_KEY_VAR", env_extra={"PLAYGROUND_UNSET_KEY_VAR": ""}
    )
    assert result.returncode == 2
    assert result.stderr == "error: --key-env PLAYGROUND_UNSET_KEY_VAR: that environment variable is not set\n"


def test_a_port_in_use_stops_it_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("playground", "--port", str(port))
    assert result.returncode == 2
    assert (
        result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}") and "pass another --port" in result.stderr
    )

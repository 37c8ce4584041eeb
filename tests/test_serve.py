"""`distilgpt2-asset serve` and `invoke`: what to serve, the server's life cycle, the client."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.serve import curl_command, free_port, model_for_serving


def test_serving_the_asset_offline_without_a_model_fails_with_one_clear_line(isolated_home, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["serve", "--port", str(free_port())]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot fetch distilgpt2@") and "serve --source DIR" in errors[0]


def test_a_local_source_is_built_once_and_then_reused(asset_spec, tiny_model_dir, isolated_home):
    first = model_for_serving(asset_spec, None, str(tiny_model_dir))
    built_at = (first / "MLmodel").stat().st_mtime_ns
    again = model_for_serving(asset_spec, None, str(tiny_model_dir))
    assert again == first and (again / "MLmodel").stat().st_mtime_ns == built_at


def test_a_model_folder_that_fails_its_manifest_is_refused_before_starting(asset_spec, tiny_mlflow_model, tmp_path):
    import shutil

    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    (model / "model" / "config.json").write_text("{}")
    with pytest.raises(AssetError, match=r"model/config\.json: sha256"):
        model_for_serving(asset_spec, model, None)


def test_the_curl_line_is_a_runnable_shell_command(asset_spec):
    line = curl_command("http://127.0.0.1:5001/score", asset_spec.sample_request)
    assert line.startswith("curl -s http://127.0.0.1:5001/score -H 'Content-Type: application/json' -d '")
    assert json.loads(line.split(" -d ", 1)[1].strip("'")) == asset_spec.sample_request


def test_invoke_without_a_server_says_how_to_start_one(capsys):
    assert main(["invoke", "--url", f"http://127.0.0.1:{free_port()}/score"]) == 2
    assert "start one with `distilgpt2-asset serve`" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_prints_the_curl_line_answers_invoke_and_stops_on_sigterm(tiny_mlflow_model, tmp_path, isolated_home, capsys):
    port = free_port()
    log = open(tmp_path / "serve.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "distilgpt2_asset.cli", "serve", "--model", str(tiny_mlflow_model),
         "--port", str(port), "--engine", "transformers", "--threads", "4"],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while "ready: " not in (tmp_path / "serve.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        output = (tmp_path / "serve.log").read_text()
        assert f"ready: http://127.0.0.1:{port}/score" in output and f"curl -s http://127.0.0.1:{port}/score" in output

        request = tmp_path / "request.json"
        request.write_text(json.dumps({"input_data": ["The quick brown fox"], "params": {"do_sample": False, "max_new_tokens": 4}}))
        assert main(["invoke", "--request-file", str(request), "--url", f"http://127.0.0.1:{port}/score"]) == 0
        assert json.loads(capsys.readouterr().out) == ["The quick brown fox jumps over the lazy"]
        assert main(["invoke", "--request-file", str(request), "--stream", "--url", f"http://127.0.0.1:{port}/score"]) == 0
        streamed = capsys.readouterr()  # the same text, printed as it arrived, then how it ended
        assert streamed.out.strip() == "The quick brown fox jumps over the lazy" and '"finish_reason": "length"' in streamed.err

        request.write_text(json.dumps({"input_data": ["x"], "params": {"top_k": 0}}))
        assert main(["invoke", "--request-file", str(request), "--url", f"http://127.0.0.1:{port}/score"]) == 2
        assert "HTTP 422" in capsys.readouterr().err

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "stopping the server" in (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
        log.close()

"""`distilgpt2-asset serve` and `invoke`: what to serve, the server's life cycle, the client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distilgpt2_asset.cli import main
from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.registry import LocalRegistry
from distilgpt2_asset.serve import curl_command, free_port, model_for_serving
from distilgpt2_scoring.model_files import ModelFilesError, write_manifest


def test_serving_the_asset_offline_without_a_model_fails_with_one_clear_line(isolated_home, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["serve", "--port", str(free_port())]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1
        and errors[0].startswith("error: cannot fetch distilgpt2@")
        and "serve --source DIR" in errors[0]
    )


def test_a_local_source_is_built_once_reused_and_never_registered_as_the_asset(
    asset_spec, tiny_model_dir, isolated_home
):
    first = model_for_serving(asset_spec, None, str(tiny_model_dir))
    built_at = (first / "MLmodel").stat().st_mtime_ns
    again = model_for_serving(asset_spec, None, str(tiny_model_dir))
    assert again == first and (again / "MLmodel").stat().st_mtime_ns == built_at
    assert LocalRegistry().find(asset_spec.name, asset_spec.version) is None


# provenance: only the pinned build is served as the asset -----------------------------------------


def test_a_testing_build_left_in_the_default_folder_is_refused_not_served_as_the_asset(
    asset_spec, tiny_model_dir, tiny_mlflow_model, isolated_home, capsys
):
    shutil.copytree(tiny_mlflow_model, isolated_home / "models" / "distilgpt2-15")
    assert main(["serve", "--port", str(free_port())]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    err = errors[0]
    assert err.startswith(
        f"error: the build at {isolated_home / 'models' / 'distilgpt2-15'} is a build of the local folder "
    )
    assert (
        f"{tiny_model_dir}, not spec.yaml's distilgpt2@{asset_spec.revision}: only that may become distilgpt2 15" in err
    )
    assert "distilgpt2-asset serve --source DIR" in err and "distilgpt2-asset build" in err
    assert LocalRegistry().find(asset_spec.name, asset_spec.version) is None


def test_a_registered_version_that_is_not_the_pinned_build_is_refused(
    asset_spec, tiny_model_dir, tiny_mlflow_model, isolated_home
):
    registry = LocalRegistry()
    registry.register(asset_spec, tiny_mlflow_model)  # as `publish --allow-unpinned` does on purpose
    with pytest.raises(AssetError) as refused:
        model_for_serving(asset_spec, None, None)
    assert str(refused.value).startswith(
        f"distilgpt2 15 in {registry.uri} is a build of the local folder {tiny_model_dir}"
    )
    assert "serve --source DIR" in str(refused.value)


def test_the_pinned_build_in_the_default_folder_is_registered_then_served_from_the_registry(
    asset_spec, pinned_mlflow_model, isolated_home
):
    shutil.copytree(pinned_mlflow_model, isolated_home / "models" / "distilgpt2-15")
    served = model_for_serving(asset_spec, None, None)
    registered = LocalRegistry().find(asset_spec.name, asset_spec.version)
    assert served == Path(registered.source) and (served / "MLmodel").is_file()
    assert model_for_serving(asset_spec, None, asset_spec.hf_model_id) == served  # --source distilgpt2: the same


def test_a_model_folder_that_fails_its_manifest_is_refused_before_starting(asset_spec, tiny_mlflow_model, tmp_path):
    import shutil

    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    (model / "model" / "config.json").write_text("{}")
    with pytest.raises(ModelFilesError, match=r"model/config\.json: sha256"):  # the CLI shows it as one line, exit 2
        model_for_serving(asset_spec, model, None)


def test_the_curl_line_is_a_runnable_shell_command(asset_spec):
    line = curl_command("http://127.0.0.1:5001/score", asset_spec.sample_request)
    assert line.startswith("curl -s http://127.0.0.1:5001/score -H 'Content-Type: application/json' -d '")
    assert json.loads(line.split(" -d ", 1)[1].strip("'")) == asset_spec.sample_request


def test_invoke_without_a_server_says_how_to_start_one(capsys):
    assert main(["invoke", "--url", f"http://127.0.0.1:{free_port()}/score"]) == 2
    assert "start one with `distilgpt2-asset serve`" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_prints_the_curl_line_answers_invoke_and_stops_on_sigterm(
    tiny_mlflow_model, tmp_path, isolated_home, capsys
):
    port = free_port()
    log = open(tmp_path / "serve.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "distilgpt2_asset.cli", "serve", "--model", str(tiny_mlflow_model),
         "--port", str(port), "--engine", "transformers", "--threads", "4"],
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        ready = f"ready: http://127.0.0.1:{port}/score"  # the command's line, not the server's "model ready: ..."
        while ready not in (tmp_path / "serve.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        assert f"curl -s http://127.0.0.1:{port}/score" in (tmp_path / "serve.log").read_text()

        request = tmp_path / "request.json"
        request.write_text(
            json.dumps({"input_data": ["The quick brown fox"], "params": {"do_sample": False, "max_new_tokens": 4}})
        )
        assert main(["invoke", "--request-file", str(request), "--url", f"http://127.0.0.1:{port}/score"]) == 0
        assert json.loads(capsys.readouterr().out) == ["The quick brown fox jumps over the lazy"]
        assert (
            main(["invoke", "--request-file", str(request), "--stream", "--url", f"http://127.0.0.1:{port}/score"]) == 0
        )
        streamed = capsys.readouterr()  # the same text, printed as it arrived, then how it ended
        assert (
            streamed.out.strip() == "The quick brown fox jumps over the lazy"
            and '"finish_reason": "length"' in streamed.err
        )

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


# Stands in for a slow model load: the server process, once started, never becomes healthy, so the
# serve command stays in its health wait until the test signals it.
HOLD_THE_SERVER = """
import os, time
with open("/proc/self/cmdline", "rb") as cmdline:
    if b"distilgpt2_asset.local_server" in cmdline.read().split(b"\\0"):
        marker = os.environ["SERVER_PID_FILE"]
        with open(marker + ".partial", "w") as out:
            out.write(str(os.getpid()))
        os.rename(marker + ".partial", marker)
        while True:
            time.sleep(1)
"""


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_during_the_health_wait_leaves_no_server_running(
    tiny_mlflow_model, tmp_path, isolated_home, signum
):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_THE_SERVER)
    pid_file = tmp_path / "server.pid"
    env = dict(
        os.environ,
        SERVER_PID_FILE=str(pid_file),
        PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
    )
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distilgpt2_asset.cli",
            "serve",
            "--model",
            str(tiny_mlflow_model),
            "--port",
            str(free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server_pid = None
    try:
        deadline = time.monotonic() + 180
        while not pid_file.exists():
            assert serve.poll() is None and time.monotonic() < deadline, (
                serve.stdout.read() if serve.poll() else "no server"
            )
            time.sleep(0.1)
        server_pid = int(pid_file.read_text())
        assert process_group_alive(server_pid)
        serve.send_signal(signum)
        output = serve.communicate(timeout=60)[0]
        assert serve.returncode == 0 and "stopping the server" in output, output
        assert not process_group_alive(server_pid), "the server outlived the serve command"
    finally:
        if serve.poll() is None:
            serve.kill()
        if server_pid is not None and process_group_alive(server_pid):
            os.killpg(server_pid, signal.SIGKILL)


def test_serve_model_scans_the_folder_before_serving_it(asset_spec, tiny_mlflow_model, tmp_path):
    """The attack: `serve --model` loaded a folder that the scan would have refused."""

    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    with open(model / "requirements.txt", "a") as handle:
        handle.write("evil-package==6.6.6\n")
    write_manifest(model)
    with pytest.raises(AssetError, match=r"refusing to serve it:\n.*requirements\.txt \[environment\]"):
        model_for_serving(asset_spec, model, None)


@pytest.mark.parametrize(
    "url", ["http://192.0.2.2:5094/score", "http://192.0.2.2:5094\\@127.0.0.1/score", "http://[::ffff:192.0.2.2]/score"]
)
def test_invoke_never_sends_a_key_over_plain_http_to_another_machine(url, monkeypatch, capsys):
    """The attack: `invoke --key-env` sent the key in clear text to any host. Refused before connecting."""
    monkeypatch.setenv("ENDPOINT_KEY", "invoke-key-51c0")
    assert main(["invoke", "--url", url, "--key-env", "ENDPOINT_KEY"]) == 2
    err = capsys.readouterr().err
    assert "the key would cross the network unencrypted; use the endpoint's https:// URL" in err
    assert "invoke-key-51c0" not in err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_invoke_sends_a_key_over_http_to_this_machine(host, monkeypatch, capsys):
    monkeypatch.setenv("ENDPOINT_KEY", "invoke-key-51c0")
    url = f"http://{host}:{free_port()}/score"
    assert main(["invoke", "--url", url, "--key-env", "ENDPOINT_KEY"]) == 2
    assert "no server answers at" in capsys.readouterr().err  # allowed: it tried this machine's port

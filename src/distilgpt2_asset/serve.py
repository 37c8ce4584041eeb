"""Serve the model locally with the real azmlinfsrv and scoring/score.py, as a managed endpoint would.

start_server() launches the server in its own process group, waits for GET / to answer
"Healthy" and returns a handle whose stop() ends it cleanly (SIGTERM, then SIGKILL after a
grace period). model_for_serving() decides what to serve: a given MLflow folder, the asset's own
registered build (built from the hub if needed, checked to be the pinned build), or a build of
another source, made once and never registered under the asset's name (provenance.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from distilgpt2_scoring.model_files import open_model

from .errors import AssetError
from .local_server import DEFAULT_HOST
from .paths import default_build_dir, scoring_dir
from .spec import AssetSpec
from .stop_signals import signals_held

DEFAULT_PORT = 5001
# One worker process (one copy of the weights) whose threads wait on the shared batcher.
DEFAULT_THREADS = 32
STARTUP_TIMEOUT_S = 300.0
STOP_GRACE_S = 15.0
# gunicorn lets in-flight requests and idle keep-alive connections finish for its graceful timeout
# before a worker exits; below STOP_GRACE_S, a stop with a client still connected stays clean.
GRACEFUL_TIMEOUT_S = 10


@dataclass
class LocalServer:
    process: subprocess.Popen
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def score_url(self) -> str:
        return f"{self.url}/score"

    def stop(self) -> int:
        """SIGTERM the server's process group, SIGKILL it if it has not exited after the grace period.

        A second Ctrl-C meanwhile waits until the server is gone (it never leaves it half-stopped)."""
        with signals_held():
            if self.process.poll() is None:
                _signal_group(self.process, signal.SIGTERM)
                try:
                    self.process.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    _signal_group(self.process, signal.SIGKILL)
                    self.process.wait()
        return self.process.returncode


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def server_environment(
    model_dir: Path, threads: int | None, app_root: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The variables a deployment sets, for a local run (existing TEXTGEN_* values are kept).

    threads=None keeps gunicorn's stock sync worker (one request at a time); with threads, the
    deployment's worker class, which times out slow clients (http_worker.GUNICORN_ARGS).
    """
    from distilgpt2_scoring.http_worker import GUNICORN_ARGS

    env = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    env.update(
        AZUREML_MODEL_DIR=str(model_dir),
        AML_APP_ROOT=str(app_root),  # where azmlinfsrv finds swagger.json
        WORKER_COUNT="1",
        HF_HUB_OFFLINE=env.get("HF_HUB_OFFLINE", "1"),
        TOKENIZERS_PARALLELISM="false",
        # Several local servers (tests, the benchmark) must not share gunicorn's one control socket.
        GUNICORN_CMD_ARGS=f"--no-control-socket --graceful-timeout {GRACEFUL_TIMEOUT_S}"
        + (f" --threads {threads} {GUNICORN_ARGS}" if threads else ""),
    )
    env.update(extra or {})
    return env


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise AssetError(f"port {port} on {host} is in use; pass another --port") from None


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_server(
    model_dir: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    threads: int | None = DEFAULT_THREADS,
    entry_script: Path | None = None,
    env: dict[str, str] | None = None,
    log: IO | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
    on_launch: Callable[[LocalServer], None] | None = None,
) -> LocalServer:
    """Start azmlinfsrv on model_dir and return once it answers its health probe.

    on_launch(server) is called as soon as the process exists, before any stop signal can be
    delivered: a caller that records it can stop the server whenever it is interrupted."""
    _check_port_free(host, port)
    entry_script = entry_script or scoring_dir() / "score.py"
    command = [
        sys.executable, "-m", "distilgpt2_asset.local_server", "--host", host,
        "--entry_script", str(entry_script), "--model_dir", str(model_dir), "--port", str(port),
    ]  # fmt: skip
    server = None
    try:
        with signals_held():  # the process and its handle come into being together
            process = subprocess.Popen(
                command,
                env=server_environment(model_dir, threads, entry_script.parent, env),
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,  # its own process group: stop() reaches gunicorn's workers too
            )
            server = LocalServer(process, host, port)
            if on_launch is not None:
                on_launch(server)
        wait_healthy(server, timeout_s)
    except BaseException:
        if server is not None:
            server.stop()
        raise
    return server


def wait_healthy(server: LocalServer, timeout_s: float) -> float:
    """Seconds until GET / answers "Healthy"; AssetError if the server exits or times out first."""
    import requests

    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.process.poll() is not None:
            raise AssetError(
                f"the server exited with code {server.process.returncode} before becoming healthy; "
                "its log above says why (e.g. a model file that fails its manifest)"
            )
        try:
            if requests.get(server.url + "/", timeout=2).text.strip() == "Healthy":
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssetError(f"the server did not become healthy within {timeout_s:.0f} s")


def curl_command(score_url: str, request: dict) -> str:
    return f"curl -s {score_url} -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(request))}"


# What to serve -----------------------------------------------------------------------------------


def _verified(folder: Path) -> Path:
    return open_model(folder, require_manifest=True).folder


def _source_fingerprint(source: Path) -> str:
    """Cheap identity of a local snapshot: its files' names, sizes and modification times."""
    entries = sorted(
        (p.relative_to(source).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in source.rglob("*")
        if p.is_file()
    )
    return hashlib.sha256(json.dumps([str(source), entries]).encode()).hexdigest()[:16]


def model_for_serving(spec: AssetSpec, model: Path | None, source: str | None) -> Path:
    """The MLflow folder to serve: --model as given; the asset's registered build (spec.yaml's hub id
    at its SHA); any other --source built once and served unregistered."""
    from .provenance import is_pinned_source
    from .registry import LocalRegistry

    if model is not None:
        from .model_scan import scan_model

        verified = _verified(Path(model))
        scan_model(Path(model)).require_clean("serve it")  # what the server will load, and all beside it
        return verified
    if is_pinned_source(spec, source):
        return Path(registered_asset(spec, LocalRegistry()).source)
    assert source is not None  # no source is the pinned one
    return source_build(spec, source)


def source_build(spec: AssetSpec, source: str) -> Path:
    """A build of a source other than the asset's own (a snapshot folder, another hub id): made once per
    snapshot under the home, used as it is and never registered under spec.yaml's name."""
    from .build import build_mlflow_model
    from .provenance import built_from

    snapshot = Path(source).expanduser()
    if snapshot.is_dir():
        source = str(snapshot.resolve())
        key = _source_fingerprint(snapshot.resolve())
    else:
        key = hashlib.sha256(source.encode()).hexdigest()[:16]
    output = default_build_dir() / f"local-{key}"
    if not (output / "MLmodel").is_file() or built_from(output).source != source:
        build_mlflow_model(spec, source, None, output)
    return _verified(output)


def registered_asset(spec: AssetSpec, registry):
    """spec.yaml's version in the local registry (an MLflow ModelVersion), refused unless it is the
    pinned build; when missing, the default build (made from the hub if absent) is registered first."""
    from .build import build_mlflow_model, default_output
    from .provenance import SERVE_ON_PURPOSE, require_pinned

    found = registry.find(spec.name, spec.version)
    if found is None:
        output = default_output(spec)
        if (output / "MLmodel").is_file():
            replace = "; or replace it with the pinned build: distilgpt2-asset build"
            require_pinned(spec, _verified(output), f"the build at {output}", SERVE_ON_PURPOSE + replace)
        else:
            try:
                build_mlflow_model(spec, None, None, output)
            except AssetError as exc:
                raise AssetError(
                    f"{exc}; or serve a local model: distilgpt2-asset serve --source DIR "
                    "(e.g. DIR made by `distilgpt2-asset testing-model --shape tiny --output DIR`)"
                ) from None
        registration = registry.register(spec, output)
        print(f"{registration.outcome}: {registration.name} {registration.asset_version} as {registration.model_uri}")
        found = registry.find(spec.name, spec.version)
    require_pinned(spec, _verified(Path(found.source)), f"{spec.name} {spec.version} in {registry.uri}")
    return found


def write_swagger(spec: AssetSpec) -> Path:
    """Regenerate scoring/swagger.json (the card's request is its example)."""
    from distilgpt2_scoring.swagger import swagger_document

    path = scoring_dir() / "swagger.json"
    path.write_text(json.dumps(swagger_document(spec.sample_request), indent=2) + "\n")
    return path


if __name__ == "__main__":  # python -m distilgpt2_asset.serve --write-swagger
    from .spec import load_spec

    if sys.argv[1:] != ["--write-swagger"]:
        sys.exit("usage: python -m distilgpt2_asset.serve --write-swagger")
    print(f"wrote {write_swagger(load_spec())}")

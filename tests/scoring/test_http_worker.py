"""http_worker: slow clients hold no thread, health answers while they wait, and they are closed in time."""

from __future__ import annotations

import shlex
import socket

import pytest
import requests
import yaml

from distilgpt2_asset.paths import asset_root
from distilgpt2_asset.serve import free_port, server_environment, start_server
from distilgpt2_scoring.http_worker import GUNICORN_ARGS, REQUEST_TIMEOUT_S, _complete

pytestmark = pytest.mark.slow
THREADS = 4
SLOW_CLIENTS = 64
HALF_HEADERS = b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
HALF_BODY = HALF_HEADERS + b'Content-Length: 1000\r\n\r\n{"input_data": ["I believe'


def test_the_deployment_and_serve_run_the_same_worker_class():
    deployment = yaml.safe_load((asset_root() / "jobs/deploy/online-deployment.yml").read_text())
    deployed = shlex.split(deployment["environment_variables"]["GUNICORN_CMD_ARGS"])
    served = shlex.split(server_environment(asset_root(), 16, asset_root())["GUNICORN_CMD_ARGS"])
    worker = shlex.split(GUNICORN_ARGS)
    assert deployed == ["--threads", "16", *worker]
    assert served[-len(worker) - 2 :] == ["--threads", "16", *worker]


@pytest.mark.parametrize(
    "sent, complete",
    [
        (HALF_HEADERS, False),
        (HALF_HEADERS + b"\r\n", True),
        (HALF_BODY, False),
        (HALF_HEADERS + b"Content-Length: 2\r\n\r\n{}", True),
        (b"GET / HTTP/1.1\nHost: x\n\n", True),
        (HALF_HEADERS + b"Content-Length: 9\r\nExpect: 100-continue\r\n\r\n", True),  # the body follows gunicorn's 100
    ],
)
def test_a_request_is_handed_to_a_thread_once_its_headers_and_body_arrived(sent, complete):
    assert _complete(sent) is complete


@pytest.fixture(scope="module")
def server(tiny_mlflow_model, engine_cache, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("server") / "azmlinfsrv.log"
    with open(log_path, "w") as log:
        server = start_server(
            tiny_mlflow_model, port=free_port(), threads=THREADS, env={"TEXTGEN_CACHE_DIR": str(engine_cache)}, log=log
        )
        yield server
        assert server.stop() == 0


def closed_by_the_server(sock: socket.socket) -> bool:
    """Reads until the server closes the connection (bounded by the request time limit and a margin)."""
    sock.settimeout(REQUEST_TIMEOUT_S + 30)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_64_slow_clients_hold_no_thread_health_answers_and_they_are_closed(server):
    """The attack: half-sent requests (headers, or a body that stops) held every thread until they hung up,
    so GET / (the liveness probe) and /score waited behind them."""
    slow = []
    try:
        for index in range(SLOW_CLIENTS):
            sock = socket.create_connection((server.host, server.port), timeout=30)
            slow.append(sock)
            sock.sendall(HALF_BODY if index % 2 else HALF_HEADERS)
        health = requests.get(server.url + "/", timeout=30)
        assert (health.status_code, health.text.strip()) == (200, "Healthy")
        answer = requests.post(
            server.score_url, json={"input_data": ["I believe"], "params": {"max_new_tokens": 2}}, timeout=60
        )
        assert answer.status_code == 200 and answer.json()[0].startswith("I believe")
        assert all(closed_by_the_server(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()

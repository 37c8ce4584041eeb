"""The playground's server: the page's files, its settings, and the proxy to one scoring URL.

The target is a stand-in for an Azure endpoint (the one call that cannot be made here): each test
checks exactly what it is sent.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

import distilgpt2_asset.playground as playground_package
from distilgpt2_asset.commands.playground import page_defaults
from distilgpt2_asset.paths import asset_root
from distilgpt2_asset.playground import server as playground_server
from distilgpt2_asset.playground.server import (
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    TOKEN_HEADER,
    PageConfig,
    PlaygroundServer,
    static_files,
)
from distilgpt2_asset.playground.target import ScoreTarget
from distilgpt2_asset.score_url import parse_score_url
from distilgpt2_asset.serve import free_port

from .conftest import PausedAnswer, json_answer, streamed_answer

KEY = "test-key-5d2e8b"
BODY = {
    "input_data": ["The river", "The river"],
    "params": {"max_new_tokens": 3, "stream": True, "return_full_text": False},
}


TOKENS: dict[str, str] = {}  # each running server's base URL -> its start's token


@pytest.fixture
def start(asset_spec):
    """start(score_url, key=None) -> the base URL of a playground server running in this process."""
    servers = []

    def run(score_url: str, key: str | None = None) -> str:
        target = ScoreTarget(parse_score_url(score_url), "ENDPOINT_KEY" if key else None, key)
        server = PlaygroundServer(PageConfig(target, page_defaults(asset_spec.sample_request)), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        TOKENS[server.url] = server.token
        return server.url

    yield run
    for server in servers:
        server.shutdown()
        server.server_close()


def post(base: str, body: dict | bytes, headers: dict[str, str] | None = None, **kwargs) -> requests.Response:
    """POST /api/score as the page does (with this start's token, unless headers say otherwise)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", TOKEN_HEADER: TOKENS[base], **(headers or {})}
    return requests.post(base + "api/score", data=data, headers=headers, timeout=30, **kwargs)


def test_the_page_and_its_files_come_from_the_package_under_a_strict_content_security_policy(start, fake_endpoint):
    base = start(fake_endpoint.url)
    page = requests.get(base, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/playground.js"></script>' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "connect-src 'self'" in policy
    for name, content_type in (("playground.js", "text/javascript"), ("playground.css", "text/css")):
        response = requests.get(f"{base}static/{name}", timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(content_type)
    for path in ("static/server.py", "static/../server.py", "static/", "favicon.ico"):
        response = requests.get(base + path, timeout=10)
        assert response.status_code == 404 and response.json()["field"] == "path"


def test_the_page_files_ship_in_the_package_data():
    package = Path(playground_package.__file__).parent.parent
    patterns = tomllib.loads((asset_root() / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "distilgpt2_asset"
    ]
    shipped = sorted(static_files())
    assert shipped == ["index.html", "playground.css", "playground.js"]
    for name in shipped:
        path = (package / "playground" / "static" / name).relative_to(package).as_posix()
        assert any(fnmatch(path, pattern) for pattern in patterns), path


def test_the_settings_name_the_target_and_the_key_variable_never_the_key(start, fake_endpoint, asset_spec):
    response = requests.get(start(fake_endpoint.url, key=KEY) + "api/config", timeout=10)
    assert response.json() == {
        "score_url": fake_endpoint.url,
        "key_env": "ENDPOINT_KEY",
        "defaults": page_defaults(asset_spec.sample_request),
        "suggestions": 3,
    }
    assert KEY not in response.text


def test_a_request_reaches_the_target_unchanged_with_the_key_added(start, fake_endpoint):
    body = json.dumps(BODY, indent=1).encode()  # the bytes as the page sent them, spacing and all
    response = post(start(fake_endpoint.url, key=KEY), body, headers={"Authorization": "Bearer from-the-page"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
    assert response.text == "".join(streamed_answer(2))
    [received] = fake_endpoint.received
    assert received.body == BODY
    assert received.headers["Authorization"] == f"Bearer {KEY}"  # the proxy's key, not the page's header
    assert received.headers["Content-Type"] == "application/json"
    assert KEY not in json.dumps(dict(response.headers))


def test_without_a_key_variable_no_authorization_is_sent(start, fake_endpoint):
    post(start(fake_endpoint.url), BODY, headers={"Authorization": "Bearer from-the-page"})
    assert "Authorization" not in fake_endpoint.received[0].headers


def test_the_answer_is_relayed_piece_by_piece_as_it_arrives(start, fake_endpoint):
    paused = PausedAnswer()
    fake_endpoint.answers.append(paused)
    with post(start(fake_endpoint.url), BODY, stream=True) as response:
        lines = response.iter_lines(decode_unicode=True)
        first = next(lines)
        assert not paused.release.is_set()  # it came through while the target still held the rest back
        assert first == streamed_answer(2)[0].strip()
        paused.release.set()
        assert "[DONE]" in "".join(lines)


def test_an_answer_cut_at_the_target_arrives_cut(start, fake_endpoint):
    dropped = PausedAnswer(drop=True)
    dropped.release.set()
    fake_endpoint.answers.append(dropped)
    with post(start(fake_endpoint.url), BODY, stream=True) as response:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            list(response.iter_content(None))


def test_a_refusal_comes_back_with_its_status_body_and_retry_after(start, fake_endpoint):
    error = {"error": "the queue is full; retry later", "field": None, "error_type": "overloaded"}
    fake_endpoint.answers.append(json_answer(429, error, {"Retry-After": "3"}))
    response = post(start(fake_endpoint.url), BODY)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.json() == error


def test_no_server_at_the_target_is_a_502_that_names_it(start):
    url = f"http://127.0.0.1:{free_port()}/score"
    response = post(start(url, key=KEY), BODY)
    assert response.status_code == 502
    assert response.json()["error"] == f"no server answers at {url}; start one with `distilgpt2-asset serve`"
    assert KEY not in response.text


@pytest.mark.parametrize(
    "headers, status, field",
    [
        ({"Host": "playground.example:8080"}, 403, "Host"),  # DNS rebinding: another name for this address
        ({"Origin": "https://elsewhere.example"}, 403, "Origin"),  # another site's page, through the browser
        ({"Content-Type": "text/plain"}, 415, "Content-Type"),  # a form post needs no CORS preflight
    ],
)
def test_what_another_site_could_send_is_refused_and_never_forwarded(start, fake_endpoint, headers, status, field):
    response = post(start(fake_endpoint.url, key=KEY), BODY, headers=headers)
    assert response.status_code == status and response.json()["field"] == field
    assert fake_endpoint.received == []


def test_the_page_own_origin_is_accepted(start, fake_endpoint):
    base = start(fake_endpoint.url)
    assert post(base, BODY, headers={"Origin": base.rstrip("/")}).status_code == 200


def test_a_body_over_the_scoring_limit_is_refused_before_it_is_read(start, fake_endpoint):
    url = start(fake_endpoint.url)
    base = urlsplit(url)
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
    connection.putrequest("POST", "/api/score")
    connection.putheader(TOKEN_HEADER, TOKENS[url])
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()  # and no body: the answer must not wait for it
    response = connection.getresponse()
    assert response.status == 413 and json.loads(response.read())["field"] == "body"
    connection.close()
    assert fake_endpoint.received == []


def test_the_log_has_a_line_per_request_and_never_the_key(start, fake_endpoint, capfd):
    post(start(fake_endpoint.url, key=KEY), BODY)
    logged = capfd.readouterr().err
    assert '"POST /api/score HTTP/1.1" 200' in logged
    assert KEY not in logged


@pytest.mark.parametrize("token", [None, "", "a-guess"], ids=["none", "empty", "wrong"])
def test_a_request_without_this_starts_token_is_refused_and_never_forwarded(start, fake_endpoint, token):
    """The attack: any local user could POST with no Origin and spend the key."""
    base = start(fake_endpoint.url, key=KEY)
    headers = {"Content-Type": "application/json"} | ({TOKEN_HEADER: token} if token is not None else {})
    response = requests.post(base + "api/score", data=json.dumps(BODY), headers=headers, timeout=30)
    assert response.status_code == 403 and response.json()["field"] == TOKEN_HEADER
    assert fake_endpoint.received == []


def test_the_page_url_carries_the_token_in_its_fragment_never_sent_to_a_server(start, fake_endpoint):
    base = start(fake_endpoint.url)
    page = requests.get(base, timeout=10).text
    assert TOKENS[base] not in page  # the page learns it from the URL the command printed, not from the server


def test_a_silent_connection_is_closed(start, fake_endpoint, monkeypatch):
    monkeypatch.setattr(playground_server.PlaygroundHandler, "timeout", 0.5)
    base = urlsplit(start(fake_endpoint.url))
    with socket.create_connection((base.hostname, base.port), timeout=30) as sock:
        sock.sendall(b"POST /api/score HTTP/1.1\r\n")  # and nothing more
        assert sock.recv(65536) == b""  # closed by the server, not left holding a thread


def test_connections_past_the_bound_are_answered_busy(start, fake_endpoint):
    base = urlsplit(start(fake_endpoint.url))
    held = [socket.create_connection((base.hostname, base.port), timeout=30) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # each holds a thread (an open request) until the bound is reached
            sock.sendall(b"GET / HTTP/1.1\r\n")
        with socket.create_connection((base.hostname, base.port), timeout=30) as extra:
            answer = b""
            while chunk := extra.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in held:
            sock.close()

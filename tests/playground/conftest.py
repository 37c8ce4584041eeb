"""Playground fixtures: a stand-in for an Azure endpoint, the playground command, and a real browser.

The browser is the system's Chromium (Debian's package `chromium`), driven by Playwright; tests
that need it skip where it is not installed, except in CI, which installs it (.ci/run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from distilgpt2_asset.serve import free_port
from distilgpt2_scoring.codec import DONE, server_sent

# Debian's Chromium in this machine's closed network (see the machine notes): no background
# connections, no component updates, no sync; Playwright adds --headless and an empty profile.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run",
]  # fmt: skip
SCREENSHOTS_ENV = "DISTILGPT2_PLAYGROUND_SCREENSHOTS"  # a folder to copy each test's screenshots to


# A stand-in for an Azure endpoint --------------------------------------------------------------------


def streamed_answer(prompts: int, pieces: tuple[str, ...] = (" one", " two", " three")) -> list[str]:
    """The events an endpoint streams for `prompts` prompts: each piece per prompt, the last with
    its finish reason and usage, then [DONE] (the published shape, codec/published.py)."""
    events = []
    for n, piece in enumerate(pieces):
        for index in range(prompts):
            last = n == len(pieces) - 1
            ending = (
                {"finish_reason": "length", "usage": {"prompt_tokens": 4, "completion_tokens": len(pieces)}}
                if last
                else {}
            )
            events.append(server_sent({"index": index, "text": piece, **ending}))
    return [*events, server_sent(DONE)]


@dataclass
class Received:
    headers: dict[str, str]
    body: dict


Answer = Callable[["EndpointHandler", dict], None]


@dataclass
class FakeEndpoint:
    """Records each request exactly as it arrives, and answers with the next scripted answer
    (default: a whole streamed answer)."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)


class EndpointHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    endpoint: FakeEndpoint

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.endpoint.received.append(Received(dict(self.headers), body))
        answer = self.endpoint.answers.pop(0) if self.endpoint.answers else stream_whole
        answer(self, body)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format, *args) -> None:
        pass


def stream_whole(handler: EndpointHandler, body: dict) -> None:
    handler.start_stream()
    for event in streamed_answer(len(body["input_data"])):
        handler.send_chunk(event)
    handler.end_stream()


class PausedAnswer:
    """An answer that sends a piece of each prompt, then waits for `release` (set by the test once
    it has seen those pieces arrive), then ends the answer, or with drop=True breaks the
    connection without the answer's end."""

    def __init__(self, drop: bool = False):
        self.drop = drop
        self.release = threading.Event()

    def __call__(self, handler: EndpointHandler, body: dict) -> None:
        prompts = len(body["input_data"])
        events = streamed_answer(prompts)
        handler.start_stream()
        for event in events[:prompts]:
            handler.send_chunk(event)
        self.release.wait(60)
        if self.drop:
            handler.close_connection = True
            return
        for event in events[prompts:]:
            handler.send_chunk(event)
        handler.end_stream()


def json_answer(status: int, body, headers: dict[str, str] | None = None) -> Answer:
    """A whole JSON answer: an error body (4xx, 5xx), or a non-streamed answer."""

    def answer(handler: EndpointHandler, request: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(len(data)),
            **(headers or {}),
        }.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    return answer


@pytest.fixture
def fake_endpoint():
    """Stands in for an Azure ML online endpoint (the one call that cannot be made here)."""
    endpoint = FakeEndpoint("")
    handler = type("Handler", (EndpointHandler,), {"endpoint": endpoint})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/score"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield endpoint
    server.shutdown()
    server.server_close()


# The playground command ------------------------------------------------------------------------------


@dataclass
class Playground:
    url: str  # the page, with this start's token in its fragment (what the command prints)
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def start_playground(
    score_url: str, log: Path, key_env: str | None = None, env: dict[str, str] | None = None
) -> Playground:
    """`distilgpt2-asset playground` as a user runs it, until its page answers."""
    port = free_port()
    command = [sys.executable, "-m", "distilgpt2_asset.cli", "playground", "--url", score_url, "--port", str(port)]
    command += ["--key-env", key_env] if key_env else []
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    base = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(base + "api/config", timeout=2).ok:
                [printed] = re.findall(r"^playground: (http://\S+#token=\S+)", log.read_text(), re.MULTILINE)
                assert printed.startswith(base + "#token=")
                return Playground(printed, process, log)
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the playground did not start: {log.read_text()}")


def stop_playground(playground: Playground) -> None:
    playground.process.terminate()
    assert playground.process.wait(10) == 0, playground.output()


# The browser ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = None
    if chromium is None:
        missing = "no Chromium on PATH: install Debian's package (apt-get install chromium); .ci/run does"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright is not installed: pip install -e '.[test]'"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page (its own profile); a script error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"the page threw: {errors}"


@pytest.fixture
def screenshot(page, tmp_path, request):
    """screenshot("step") saves the page as NN-step.png under the test's tmp_path/screenshots (and
    under $DISTILGPT2_PLAYGROUND_SCREENSHOTS/<test>/ when that is set, to look at them)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    taken = []

    def take(step: str) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{step}.png"
        page.screenshot(path=path, full_page=True)
        taken.append(path)
        return path

    yield take
    keep = os.environ.get(SCREENSHOTS_ENV)
    if keep:
        target = Path(keep) / request.node.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(folder, target)

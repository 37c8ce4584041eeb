"""The playground's HTTP server on 127.0.0.1: the page, its settings, and a proxy to /score.

  GET  /               the page (static/index.html); GET /static/NAME its script and styles
  GET  /api/config     the target's URL and key variable (never the key) and the page's defaults
  POST /api/score      the body, unchanged, to the target's /score with the key added; the
                       answer (a stream of server-sent events, or a JSON error) relayed as it comes

The proxy forwards to one URL only, and refuses what a page on another site could send through a
user's browser: a Host other than this server's (DNS rebinding), a foreign Origin, and a body that
is not JSON (a cross-site JSON POST needs a CORS preflight, which this server never grants). Every
proxied request must carry this start's token (X-Playground-Token): the page reads it from the
fragment of the URL the command prints (a fragment is never sent to a server), so another user of
this machine, who can reach 127.0.0.1 but not the terminal, cannot spend the key. The key only ever
goes into the forwarded request's headers: not into an answer, not into the log. Each connection
times out when it falls silent (CLIENT_TIMEOUT_S) and at most MAX_CONNECTIONS are served at once.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

import certifi
import urllib3

from distilgpt2_scoring.settings import ServingSettings

from .target import ScoreTarget

# The scoring server's own limit: a larger body would only come back as its 413.
MAX_BODY_BYTES = ServingSettings.model_fields["max_body_bytes"].default
CONNECT_TIMEOUT_S = 10.0
# Longest silence before an answer or between two of its pieces.
READ_TIMEOUT_S = 300.0
CHUNK_BYTES = 64 * 1024
# A connection of the page that falls silent this long (mid-request, or idle between two) is closed.
CLIENT_TIMEOUT_S = 30.0
# Connections served at once (a thread each); past it, a connection is answered 503 and closed.
MAX_CONNECTIONS = 32
TOKEN_HEADER = "X-Playground-Token"
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
RELAYED_HEADERS = ("Content-Type", "Retry-After", "Cache-Control")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The page runs only its own files: no inline script, nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, shipped as package data: name -> (content, content type)."""
    folder = resources.files(__package__) / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files


@dataclass(frozen=True)
class PageConfig:
    """What GET /api/config tells the page."""

    target: ScoreTarget
    defaults: dict  # the params the page starts with
    suggestions: int = 3

    def to_json(self) -> dict:
        return {**self.target.described(), "defaults": self.defaults, "suggestions": self.suggestions}


class PlaygroundServer(ThreadingHTTPServer):
    daemon_threads = True  # a stream still open does not hold up Ctrl-C
    server_address: tuple[str, int]  # an AF_INET socket's getsockname(): (host, port)

    def __init__(self, config: PageConfig, host: str, port: int):
        self.config = config
        self.files = static_files()
        self.token = secrets.token_urlsafe(32)  # this start's: printed in the page's URL, never served
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        # One pool for all threads (urllib3's is thread-safe): the target's connections are reused.
        # No retries (a retried generation is a second one) and no redirects (the key goes to one URL).
        self.http = urllib3.PoolManager(
            retries=False,
            ca_certs=certifi.where(),
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        )
        super().__init__((host, port), PlaygroundHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def page_url(self) -> str:
        """The page with this start's token in its fragment: the URL to open."""
        return f"{self.url}#token={self.token}"

    def token_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.token.encode())

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            request.setblocking(False)
            try:
                request.send(_BUSY, socket.MSG_NOSIGNAL)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def own_hosts(self) -> set[str]:
        port = self.server_address[1]
        return {f"{self.server_address[0]}:{port}", f"localhost:{port}"}


class PlaygroundHandler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    protocol_version = "HTTP/1.1"  # chunked answers: a stream cut upstream arrives cut, not complete
    timeout = CLIENT_TIMEOUT_S  # on the connection's socket: each read and write of it

    def version_string(self) -> str:
        return "distilgpt2-playground"

    # routes ---------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._from_this_host():
            return
        path = urlsplit(self.path).path
        if path == "/":
            self._send_file("index.html")
        elif path.startswith("/static/") and path[len("/static/") :] in self.server.files:
            self._send_file(path[len("/static/") :])
        elif path == "/api/config":
            self._send_json(HTTPStatus.OK, self.server.config.to_json())
        else:
            self._send_error(HTTPStatus.NOT_FOUND, f"no such page: {path}", "path")

    def do_POST(self) -> None:
        self.close_connection = True  # an answer that refuses the body leaves it unread
        if not self._from_this_host():
            return
        if self.path != "/api/score":
            self._send_error(HTTPStatus.NOT_FOUND, f"POST goes to /api/score, not {self.path}", "path")
            return
        if not self.server.token_matches(self.headers.get(TOKEN_HEADER)):
            self._send_error(
                HTTPStatus.FORBIDDEN,
                "this playground's token is missing or wrong: open the page at the URL the playground printed",
                TOKEN_HEADER,
            )
            return
        body = self._json_body()
        if body is not None:
            self._forward(body)

    def _not_allowed(self) -> None:
        self._send_error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported here", "method")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    # checks ---------------------------------------------------------------------------------------
    def _from_this_host(self) -> bool:
        """Only this server's own pages may use it: its Host, and no foreign Origin."""
        own = self.server.own_hosts()
        origin = self.headers.get("Origin")
        if self.headers.get("Host") not in own:
            self._send_error(HTTPStatus.FORBIDDEN, "this server answers only requests to its own address", "Host")
        elif origin is not None and origin not in {f"http://{host}" for host in own}:
            self._send_error(HTTPStatus.FORBIDDEN, "requests from other sites are refused", "Origin")
        else:
            return True
        return False

    def _json_body(self) -> bytes | None:
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._send_error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request as application/json", "Content-Type")
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send_error(HTTPStatus.LENGTH_REQUIRED, "a request needs a Content-Length", "Content-Length")
            return None
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request is {length} bytes; the limit is {MAX_BODY_BYTES}",
                "body",
            )
            return None
        return self.rfile.read(length)

    # the proxy ------------------------------------------------------------------------------------
    def _forward(self, body: bytes) -> None:
        target = self.server.config.target
        try:
            upstream = self.server.http.request(
                "POST", target.url, body=body, headers=target.headers(), preload_content=False, redirect=False
            )
        except urllib3.exceptions.NewConnectionError:  # (a subclass of the timeout errors)
            hint = "; start one with `distilgpt2-asset serve`" if target.local else ""
            self._send_error(HTTPStatus.BAD_GATEWAY, f"no server answers at {target.url}{hint}", None)
            return
        except urllib3.exceptions.TimeoutError as exc:
            self._send_error(
                HTTPStatus.GATEWAY_TIMEOUT, f"{target.url} did not answer in time ({type(exc).__name__})", None
            )
            return
        except urllib3.exceptions.HTTPError as exc:
            self._send_error(HTTPStatus.BAD_GATEWAY, f"{target.url} failed: {type(exc).__name__}", None)
            return
        try:
            self.send_response(upstream.status)
            for name in RELAYED_HEADERS:
                if name in upstream.headers:
                    self.send_header(name, upstream.headers[name])
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self._relay(upstream)
        finally:
            upstream.release_conn()  # or close it, mid-answer: the server then stops generating

    def _relay(self, answer: urllib3.BaseHTTPResponse) -> None:
        """Each piece as it arrives; a cut answer stays cut (no last chunk), so the page sees the drop."""
        while True:
            try:
                piece = answer.read1(CHUNK_BYTES)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                self.log_message("the target's answer broke off: %s", type(exc).__name__)
                return
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:  # the page went away: closing the target's answer ends its generation
                self.log_message("the page left before the answer ended")
                return
            if not piece:
                return

    # answers --------------------------------------------------------------------------------------
    def _send(self, status: int, content: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(content)

    def _send_file(self, name: str) -> None:
        self._send(HTTPStatus.OK, *self.server.files[name])

    def _send_json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send_error(self, status: int, message: str, field: str | None) -> None:
        """The scoring server's error shape, so that the page shows both alike."""
        self._send_json(status, {"error": message, "field": field, "error_type": "playground"})

    def log_message(self, format: str, *args) -> None:
        """One line per request (method, path, status) on stderr; headers, and so the key, never."""
        sys.stderr.write(f"playground: {self.address_string()} {format % args}\n")

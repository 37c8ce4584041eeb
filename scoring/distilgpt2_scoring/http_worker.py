"""gunicorn's threaded worker with time limits for slow clients (GUNICORN_CMD_ARGS --worker-class, see GUNICORN_ARGS).

azmlinfsrv runs gunicorn; `--threads N` makes its worker gthread, which hands a connection to one of
the N threads as soon as a byte arrives, and the thread then reads the headers and the body with
blocking reads and no time limit (`--timeout` watches the worker process, `--keep-alive` only idle
connections between requests). Half-sent requests (headers, or a body that stops) would each hold a
thread until the client hung up: N of them hold every thread, the health probe's (GET /) too.

This worker buffers a request in its event loop, where a waiting connection costs no thread: a
connection gets a thread only once its headers and its body (up to BUFFERED_BODY_BYTES) have
arrived. Until then it waits in the poller like an idle keep-alive connection: each silence is
bounded by gunicorn's --keep-alive, the whole request by REQUEST_TIMEOUT_S, and then it is closed.
Every blocking read or write a thread still makes (a body past the buffered part, a client that
stops reading a stream) times out after READ_TIMEOUT_S, and reads end at the request's deadline.
TLS and HTTP/2 (which azmlinfsrv does not use) go through gunicorn's own path unchanged.
"""

from __future__ import annotations

import re
import socket
import time

from gunicorn.workers import gthread

REQUEST_TIMEOUT_S = 30.0  # from the first byte of a request to its last
READ_TIMEOUT_S = 10.0  # any one blocking read or write of a connection in a thread
BUFFERED_BODY_BYTES = 1 << 20
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*([0-9]{1,12})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_EXPECT_CONTINUE = re.compile(rb"^expect:[ \t]*100-continue[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_READ_SIZE = 1 << 16
GUNICORN_ARGS = f"--worker-class {__name__}.SlowClientWorker"


class TimedSocket(socket.socket):
    """A client socket whose blocking mode has a timeout (gunicorn sets blocking mode before it reads),
    and whose blocking reads end at `deadline` (time.monotonic())."""

    deadline: float | None = None

    @classmethod
    def adopt(cls, sock: socket.socket) -> TimedSocket:
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(READ_TIMEOUT_S)
        else:
            super().setblocking(False)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.deadline is None or self.gettimeout() is None or flags & socket.MSG_DONTWAIT:
            return super().recv(bufsize, flags)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive within its time limit")
        self.settimeout(min(READ_TIMEOUT_S, left))
        try:
            return super().recv(bufsize, flags)
        finally:
            self.settimeout(READ_TIMEOUT_S)


class SlowClientWorker(gthread.ThreadWorker):
    def enqueue_req(self, conn) -> None:
        if not isinstance(conn.sock, TimedSocket):
            conn.sock = TimedSocket.adopt(conn.sock)
            conn.sock.setblocking(False)
        super().enqueue_req(conn)

    def handle(self, conn):
        if self.cfg.is_ssl or conn.is_http2 or (conn.parser is not None and conn.parser.unreader.buf.tell()):
            return super().handle(conn)  # TLS, HTTP/2, or pipelined bytes already read: gunicorn's own path
        now = time.monotonic()
        started = getattr(conn, "request_started", None) or now
        buffered = getattr(conn, "buffered", b"")
        try:
            while not _complete(buffered):
                chunk = conn.sock.recv(_READ_SIZE, socket.MSG_DONTWAIT)
                if not chunk:
                    return False  # the client closed the connection
                buffered += chunk
        except BlockingIOError:  # nothing more yet: wait in the poller, holding no thread
            if now - started >= REQUEST_TIMEOUT_S:
                return False
            conn.request_started, conn.buffered = started, buffered
            return gthread._DEFER
        except OSError:
            return False
        conn.request_started, conn.buffered = None, b""
        conn.sock.setblocking(True)
        conn.init()  # gunicorn's parser, given the bytes read here first
        conn.parser.unreader.unread(buffered)
        conn.data_ready = True
        conn.sock.deadline = started + REQUEST_TIMEOUT_S
        return super().handle(conn)


def _complete(buffered: bytes) -> bool:
    """The headers have arrived, and the body too (up to BUFFERED_BODY_BYTES), unless the client waits
    for gunicorn's `100 Continue` before it sends the body."""
    end = _HEADER_END.search(buffered)
    if end is None:
        return len(buffered) >= BUFFERED_BODY_BYTES  # headers this long: gunicorn's limits refuse them
    if _EXPECT_CONTINUE.search(buffered, 0, end.start()):
        return True
    length = _CONTENT_LENGTH.search(buffered, 0, end.start())
    body = min(int(length[1]), BUFFERED_BODY_BYTES) if length else 0
    return len(buffered) - end.end() >= body

"""Is the HTTP client still there? Lets a waiting request give up its batch slot when it is not.

score.run() sets `client_gone` for the duration of a request (a check on the gunicorn socket);
the service passes it to the batcher, so the Service contract stays `predict(payload)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import select
import socket
from typing import Callable, Iterator

client_gone: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar("client_gone", default=None)


def peer_closed(sock: socket.socket) -> bool:
    """True when the peer has closed the connection (readable, yet nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True


@contextlib.contextmanager
def watching(sock: socket.socket | None) -> Iterator[None]:
    token = client_gone.set((lambda: peer_closed(sock)) if sock is not None else None)
    try:
        yield
    finally:
        client_gone.reset(token)

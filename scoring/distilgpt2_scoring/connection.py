"""Is the HTTP client still there? Lets a request give up its place in the batch when it is not.

poll(), not select(): select() fails on file descriptors above 1023, which a busy server reaches.
A client that has only finished sending (a half-closed socket: readable, end of file, still
reading our answer) is still there; one whose connection is reset or fully closed is gone. A full
close looks like a half close until something is sent, so on end of file one interim
`100 Continue` response is sent (HTTP/1.1 lets a server send it at any time before the answer,
and clients skip it): a closed peer answers it with a reset, which the next check sees.
"""

from __future__ import annotations

import select
import socket

_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL
_INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n"


class ClientWatch:
    """`watch()` is True once the client on sock is gone. Probes (once) on end of file only while
    nothing of the answer has been sent (probe=False after that: the answer's bytes are under way)."""

    def __init__(self, sock: socket.socket, probe: bool = True):
        self.sock = sock
        self.probe = probe

    def __call__(self) -> bool:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLRDHUP)
        try:
            events = dict(poller.poll(0)).get(self.sock.fileno(), 0)
            if events & _GONE:
                return True
            if not events or self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"":
                return False  # quiet, or pipelined bytes of a next request: still there
            if self.probe:
                self.probe = False
                self.sock.send(_INTERIM, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            return False
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):  # reset, or the socket is already closed
            return True

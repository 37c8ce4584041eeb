"""Ctrl-C, SIGTERM and SIGHUP as one KeyboardInterrupt, and short sections no stop signal may split.

A long-running command (serve) calls stop_on_signals() before it starts anything, so a stop
request at any moment unwinds through its clean-up. signals_held() makes the few statements that
start a process and record its handle indivisible: a stop request arriving there is delivered
right after, when the handle is known and the process can be stopped.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C (SIGINT) does."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)


@contextmanager
def signals_held():
    """Hold stop signals during the block; the first one received is delivered when it ends.

    Only the main thread receives signals in Python; elsewhere this holds nothing (and needs not).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, lambda signum, frame: received.append(signum))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        if received:
            signal.raise_signal(received[0])

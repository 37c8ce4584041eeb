"""Engine gauges, sampled every TEXTGEN_GAUGE_INTERVAL_S seconds by a thread of their own.

Running and waiting sequences and the KV cache's use come from the engine itself where it keeps a
queue and a cache (OpenVINO GenAI's pipeline metrics, read on the engine thread at its next step),
else from the scheduler's counts; tokens/s and refusals are over the window since the last sample.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EngineGauges:
    running: int  # sequences in the engine's batch
    waiting: int  # sequences queued for a place in it (ours and the engine's own queue)
    kv_cache_usage: float | None  # fraction of the KV cache in use; None: the engine has no paged cache
    tokens_per_s: float  # tokens generated per second over the window
    window_s: float
    refusals: dict[str, int] = field(default_factory=dict)  # refused in the window, by cause

    def fields(self) -> dict:
        return {
            "running": self.running,
            "waiting": self.waiting,
            "kv_cache_usage": None if self.kv_cache_usage is None else round(self.kv_cache_usage, 4),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "window_s": round(self.window_s, 3),
            "refusals": self.refusals,
        }


class GaugeSampler:
    """sample() reads the scheduler; a thread calls it every interval and hands the gauges on."""

    def __init__(self, scheduler, refusals: Callable[[], Counter]):
        self.scheduler = scheduler
        self.refusals = refusals  # a copy of the refusals so far, by cause (the hub counts them)
        self._last = (time.monotonic(), scheduler.tokens_generated, refusals())
        scheduler.occupancy_wanted = True  # the engine's figures from its first step on: an idle one is known
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> EngineGauges:
        scheduler = self.scheduler
        occupancy = scheduler.engine_occupancy if scheduler.in_engine else None
        scheduler.occupancy_wanted = True  # fresh figures for the next sample, read at the next step
        now, tokens, refusals = time.monotonic(), scheduler.tokens_generated, self.refusals()
        since, tokens_before, refusals_before = self._last
        self._last = now, tokens, refusals
        window = max(now - since, 1e-9)
        if occupancy is None:
            running, waiting, kv = scheduler.in_engine, 0, None
        else:
            running, waiting, kv = occupancy.running, occupancy.waiting, occupancy.kv_cache_usage
        if not scheduler.in_engine and scheduler.engine_occupancy is not None:
            kv = 0.0  # an idle engine has freed its cache; its last figure is from when it was busy
        return EngineGauges(
            running, waiting + scheduler.queued, kv, (tokens - tokens_before) / window, window,
            dict(refusals - refusals_before),
        )  # fmt: skip

    def start(self, interval_s: float, publish: Callable[[EngineGauges], None]) -> None:
        def loop():
            while not self._stop.wait(interval_s):
                publish(self.sample())

        self._thread = threading.Thread(target=loop, name="engine-gauges", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

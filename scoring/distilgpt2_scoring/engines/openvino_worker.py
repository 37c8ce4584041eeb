"""The OpenVINO pipeline's own process: it owns the ContinuousBatchingPipeline and steps it.

Why a process: openvino_genai's ContinuousBatchingPipeline.step() holds the GIL for the whole
step (its binding releases it in generate() only). In the server's process every request thread's
Python (HTTP, JSON, tokenizing, the answer) would wait for the running step to end, and each step
for them: under load a short request's answer waited through several steps on its way in and
out. Here the steps run in this process, back to back while it has sequences, and the server's
engine thread sleeps on the pipe (the GIL free) until a step's report comes.

Messages (multiprocessing.connection, pickled, between two processes of this package only):
  server -> worker  ("start", folder, EngineConfig, vocab_size, eos_token_id)  once, first
                    ("add", id, prompt ids, GenerationParams, seed, watched) | ("remove", id)
  worker -> server  ("ready",) | ("error", why)  once, after start
                    ("step", [(id, new token ids, their steps' times, state)], (running, waiting,
                    kv cache usage)): what the steps since the last report made
                    ("failed", why): the step raised; every sequence it held is dropped
A report leaves after a step that ended a sequence, or gave a watched one (streamed, or checked
for stop strings) its first token or its first since WATCHED_INTERVAL_S; else every QUIET_STEPS
steps. Not at every step, because each report wakes the server's engine thread, and on 2 vCPUs
that thread's time is taken from the step. Intel Xeon with AMX, alternating rounds against a report
per step: one greedy request 354 against 323 tokens/s, 8 clients 1173 against 1129 (8 rounds);
8 streaming clients 1108 against 1040, first token p95 0.051 against 0.047 s (6 rounds). Times are
time.monotonic(), one clock for every process of the machine. A sequence removed by the server
may still appear in a report made before the removal arrived. The worker ends when the server's
end of the pipe closes (the server stopped, or died).

    python -m distilgpt2_scoring.engines.openvino_worker FD   (started by OpenVINOEngine.load)
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal

State = Literal["running", "done", "ignored"]  # ignored: the pipeline could not schedule the sequence
# A report leaves at least this often: the gauges' token counts stay current, and the server's engine
# thread looks at least this often for requests ended early (client gone, deadline).
QUIET_STEPS = 16
# A watched sequence's tokens wait at most this long (after its first, which goes at once): a stream
# carries a few tokens per event, below what a reader notices.
WATCHED_INTERVAL_S = 0.02


@dataclass
class Unreported:
    """A sequence's tokens made since the last report, with the time of each step that gave them."""

    token_ids: list[int] = field(default_factory=list)
    made_at: list[float] = field(default_factory=list)
    state: State = "running"


class Worker:
    def __init__(self, pipeline, vocab_size: int, eos_token_id: int):
        self.pipeline = pipeline
        self.vocab_size = vocab_size
        self.eos_token_id = eos_token_id
        self.handles: dict[int, Any] = {}  # sequence id -> openvino_genai's GenerationHandle
        self.watched: dict[int, float | None] = {}  # watched sequence id -> when its tokens were last reported
        self.unreported: dict[int, Unreported] = {}
        self.quiet_steps = 0  # steps since the last report

    def apply(self, message: tuple) -> None:
        import openvino_genai

        if message[0] == "add":
            import numpy
            import openvino

            from .openvino import generation_config

            _, sequence_id, prompt_ids, params, seed, watched = message
            ids = openvino.Tensor(numpy.array([prompt_ids], dtype=numpy.int64))
            config = generation_config(params, seed, self.vocab_size, self.eos_token_id)
            self.handles[sequence_id] = self.pipeline.add_request(sequence_id, ids, config)
            if watched:
                self.watched[sequence_id] = None
        elif message[0] == "remove":
            self._forget(message[1])
            handle = self.handles.pop(message[1], None)
            if handle is not None and handle.get_status() == openvino_genai.GenerationStatus.RUNNING:
                handle.cancel()  # leaves the batch at the next step, its KV blocks freed

    def step(self) -> tuple | None:
        """One pipeline step, and the report of what the steps since the last one made when one is
        due (module docstring): ("step", [(id, token ids, times, state)], occupancy); else None."""
        from openvino_genai import GenerationStatus

        self.pipeline.step()
        made_at, due = time.monotonic(), False
        for sequence_id, handle in list(self.handles.items()):
            status = handle.get_status()
            new = list(handle.read()[0].generated_ids) if handle.can_read() else []
            if not new and status == GenerationStatus.RUNNING:
                continue
            unreported = self.unreported.setdefault(sequence_id, Unreported())
            if new:
                unreported.token_ids += new
                unreported.made_at.append(made_at)
                if sequence_id in self.watched:
                    last = self.watched[sequence_id]
                    due = due or last is None or made_at - last >= WATCHED_INTERVAL_S
            if status != GenerationStatus.RUNNING:
                unreported.state = "ignored" if status == GenerationStatus.IGNORED else "done"
                del self.handles[sequence_id]
                due = True
        self.quiet_steps += 1
        if not (due or self.quiet_steps >= QUIET_STEPS or not self.handles):
            return None
        reports = [(i, u.token_ids, u.made_at, u.state) for i, u in self.unreported.items()]
        for sequence_id, _, _, state in reports:
            if state != "running":
                self._forget(sequence_id)
            elif sequence_id in self.watched:
                self.watched[sequence_id] = made_at
        self.unreported, self.quiet_steps = {}, 0
        metrics = self.pipeline.get_metrics()  # of this step
        running = metrics.scheduled_requests
        return "step", reports, (running, max(metrics.requests - running, 0), metrics.cache_usage / 100)

    def _forget(self, sequence_id: int) -> None:
        self.unreported.pop(sequence_id, None)
        self.watched.pop(sequence_id, None)

    def serve(self, connection: Connection) -> None:
        """Apply the server's commands, step while any sequence is held; block when none is."""
        while True:
            while connection.poll(0 if self.handles else None):
                self.apply(connection.recv())  # EOFError: the server is gone
            try:
                report = self.step()
            except Exception:  # the pipeline failed: the server fails the running requests, and goes on
                report = ("failed", traceback.format_exc(limit=5))
                for handle in self.handles.values():
                    handle.cancel()
                self.handles.clear()
                self.unreported.clear()
                self.watched.clear()
            if report is not None:
                connection.send(report)


def main(fd: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl+C is the server's to handle; its closed pipe ends this
    connection = Connection(fd)
    _, folder, config, vocab_size, eos_token_id = connection.recv()
    try:
        from .openvino import continuous_batching_pipeline

        pipeline = continuous_batching_pipeline(folder, config)
    except Exception:
        connection.send(("error", traceback.format_exc(limit=5)))
        return 1
    connection.send(("ready",))
    try:
        Worker(pipeline, vocab_size, eos_token_id).serve(connection)
    except (EOFError, OSError):  # the server closed its end: nothing is left to answer
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1])))

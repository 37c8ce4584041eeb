"""The OpenVINO pipeline's own process: it owns the ContinuousBatchingPipeline and steps it.

Why a process: openvino_genai's ContinuousBatchingPipeline.step() holds the GIL for the whole
step (its binding releases it in generate() only). In the server's process every request thread's
Python (HTTP, JSON, tokenizing, the answer) would wait for the running step to end, and each step
for them: under load a short request's answer waited through several steps on its way in and
out. Here the steps run in this process, back to back while it has sequences, and the server's
engine thread sleeps on the pipe (the GIL free) until a step's report comes.

Messages (multiprocessing.connection, pickled, between two processes of this package only):
  server -> worker  ("start", folder, EngineConfig, vocab_size, eos_token_id)  once, first
                    ("add", id, prompt ids, GenerationParams, seed) | ("remove", id)
  worker -> server  ("ready",) | ("error", why)  once, after start
                    ("step", [(id, new token ids, state)], (running, waiting, kv cache usage))
                    ("failed", why): the step raised; every sequence it held is dropped
A sequence removed by the server may still appear in a report made before the removal arrived.
The worker ends when the server's end of the pipe closes (the server stopped, or died).

    python -m distilgpt2_scoring.engines.openvino_worker FD   (started by OpenVINOEngine.load)
"""

from __future__ import annotations

import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any, Literal

State = Literal["running", "done", "ignored"]  # ignored: the pipeline could not schedule the sequence


class Worker:
    def __init__(self, pipeline, vocab_size: int, eos_token_id: int):
        self.pipeline = pipeline
        self.vocab_size = vocab_size
        self.eos_token_id = eos_token_id
        self.handles: dict[int, Any] = {}  # sequence id -> openvino_genai's GenerationHandle

    def apply(self, message: tuple) -> None:
        import openvino_genai

        if message[0] == "add":
            import numpy
            import openvino

            from .openvino import generation_config

            _, sequence_id, prompt_ids, params, seed = message
            ids = openvino.Tensor(numpy.array([prompt_ids], dtype=numpy.int64))
            config = generation_config(params, seed, self.vocab_size, self.eos_token_id)
            self.handles[sequence_id] = self.pipeline.add_request(sequence_id, ids, config)
        elif message[0] == "remove":
            handle = self.handles.pop(message[1], None)
            if handle is not None and handle.get_status() == openvino_genai.GenerationStatus.RUNNING:
                handle.cancel()  # leaves the batch at the next step, its KV blocks freed

    def step(self) -> tuple:
        """One pipeline step and what it made: ("step", reports, occupancy)."""
        from openvino_genai import GenerationStatus

        self.pipeline.step()
        reports: list[tuple[int, list[int], State]] = []
        for sequence_id, handle in list(self.handles.items()):
            status = handle.get_status()
            if status == GenerationStatus.IGNORED:
                reports.append((sequence_id, [], "ignored"))
                del self.handles[sequence_id]
                continue
            new = list(handle.read()[0].generated_ids) if handle.can_read() else []
            done = status != GenerationStatus.RUNNING
            if new or done:
                reports.append((sequence_id, new, "done" if done else "running"))
            if done:
                del self.handles[sequence_id]
        metrics = self.pipeline.get_metrics()  # of this step
        running = metrics.scheduled_requests
        return "step", reports, (running, max(metrics.requests - running, 0), metrics.cache_usage / 100)

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

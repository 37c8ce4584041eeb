"""Production data for Azure ML model monitoring (TEXTGEN_COLLECT_DATA=true, with the deployment's
data_collector: `deploy --collect-data`): per sequence, the request (prompt, parameters) into the
model_inputs collection and the answer (text, finish reason, token counts) into model_outputs,
with Azure's request id as the correlation id, through azureml-ai-monitoring's Collector. Azure
stores them as JSON Lines in the workspace's blob storage
(azureml://datastores/workspaceblobstore/paths/modelDataCollector/<endpoint>/<deployment>/<collection>/...).

Off the request thread: a finished record is queued, a thread of its own builds the tables and
hands them to the Collector (whose own thread sends them); when the queue is full a record is
dropped and counted, never waited for.

Sampling (TEXTGEN_COLLECT_DATA_RATE, `deploy --collect-data RATE`) is drawn here, once per request,
before anything is built. The data_collector's own sampling_rate is left at 1: azureml-ai-monitoring's
Collector draws it for each collection apart, which would keep a request's input without its output.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
from collections.abc import Callable

from .gauges import EngineGauges
from .record import RequestRecord

INPUTS, OUTPUTS = "model_inputs", "model_outputs"
QUEUE_SIZE = 1000
logger = logging.getLogger(__name__)


def columns(record: RequestRecord) -> tuple[dict[str, list], dict[str, list]] | None:
    """What the collections receive for one answered request, column by column: a row per sequence
    each; None when it has no answer."""
    if record.group is None or record.prompt_text is None or record.completion_text is None:
        return None
    params = json.dumps({k: v for k, v in vars(record.request.params).items() if v is not None})
    sequences = record.group.sequences
    inputs = {"prompt": record.prompt_text, "params": [params] * len(sequences)}
    outputs: dict[str, list] = {
        "generated_text": record.completion_text,
        "finish_reason": [s.finish_reason or record.error_type for s in sequences],
        "prompt_tokens": [len(s.prompt_ids) for s in sequences],
        "completion_tokens": [len(s.token_ids) for s in sequences],
    }
    return inputs, outputs


class DataCollectorExporter:
    def __init__(self, collectors: dict | None = None, rate: float = 1.0, draw: Callable[[], float] = random.random):
        if collectors is None:
            from azureml.ai.monitoring import Collector

            collectors = {name: Collector(name=name, on_error=self._failed) for name in (INPUTS, OUTPUTS)}
        self.collectors = collectors
        self.rate, self.draw = rate, draw  # a request is sent when draw() < rate
        self.dropped = 0  # for want of room in the queue
        self._queue: queue.Queue[RequestRecord | None] = queue.Queue(QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="data-collector", daemon=True)
        self._thread.start()

    @staticmethod
    def _failed(error: Exception) -> None:
        logger.warning("data collector: %s", error)

    def on_request(self, record: RequestRecord) -> None:
        if record.status != 200:
            return
        if self.draw() >= self.rate:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            logger.warning(
                "data collector: queue full, request %s not collected (%d so far)", record.request_id, self.dropped
            )

    def on_gauges(self, gauges: EngineGauges) -> None:
        pass

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import pandas
        from azureml.ai.monitoring.context import BasicCorrelationContext

        while (record := self._queue.get()) is not None:
            if (tables := columns(record)) is None:
                continue
            inputs, outputs = tables
            try:
                context = BasicCorrelationContext(id=record.request_id or None)
                # dtype=object: the values as they are, no inference (pandas 3 would turn the text
                # columns into arrow strings, only for the Collector's to_json): a third less CPU
                context = self.collectors[INPUTS].collect(pandas.DataFrame(inputs, dtype=object), context)
                self.collectors[OUTPUTS].collect(pandas.DataFrame(outputs, dtype=object), context)
            except Exception:  # one bad record must not stop the collection
                logger.exception("data collector: request %s not collected", record.request_id)

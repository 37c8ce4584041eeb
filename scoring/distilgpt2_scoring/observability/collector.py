"""Production data for Azure ML model monitoring (TEXTGEN_COLLECT_DATA=true, with the deployment's
data_collector: `deploy --collect-data`): per sequence, the request (prompt, parameters) into the
model_inputs collection and the answer (text, finish reason, token counts) into model_outputs,
with Azure's request id as the correlation id, through azureml-ai-monitoring's Collector. Azure
stores them as JSON Lines in the workspace's blob storage
(azureml://datastores/workspaceblobstore/paths/modelDataCollector/<endpoint>/<deployment>/<collection>/...).

Off the request thread: a finished record is queued, a thread of its own builds the tables and
hands them to the Collector (whose own thread sends them); when the queue is full a record is
dropped and counted, never waited for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading

from .gauges import EngineGauges
from .record import RequestRecord

INPUTS, OUTPUTS = "model_inputs", "model_outputs"
QUEUE_SIZE = 1000
logger = logging.getLogger(__name__)


def rows(record: RequestRecord) -> tuple[list[dict], list[dict]]:
    """What the collections receive for one answered request: one row per sequence each."""
    if record.group is None or record.prompt_text is None or record.completion_text is None:
        return [], []
    params = json.dumps({k: v for k, v in dataclasses.asdict(record.request.params).items() if v is not None})
    inputs = [{"prompt": prompt, "params": params} for prompt in record.prompt_text]
    outputs = [
        {"generated_text": text, "finish_reason": s.finish_reason or record.error_type,
         "prompt_tokens": len(s.prompt_ids), "completion_tokens": len(s.token_ids)}
        for text, s in zip(record.completion_text, record.group.sequences, strict=True)
    ]  # fmt: skip
    return inputs, outputs


class DataCollectorExporter:
    def __init__(self, collectors: dict | None = None):
        if collectors is None:
            from azureml.ai.monitoring import Collector

            collectors = {name: Collector(name=name, on_error=self._failed) for name in (INPUTS, OUTPUTS)}
        self.collectors = collectors
        self.dropped = 0
        self._queue: queue.Queue[RequestRecord | None] = queue.Queue(QUEUE_SIZE)
        self._thread = threading.Thread(target=self._run, name="data-collector", daemon=True)
        self._thread.start()

    @staticmethod
    def _failed(error: Exception) -> None:
        logger.warning("data collector: %s", error)

    def on_request(self, record: RequestRecord) -> None:
        if record.status != 200:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def on_gauges(self, gauges: EngineGauges) -> None:
        pass

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import pandas
        from azureml.ai.monitoring.context import BasicCorrelationContext

        while (record := self._queue.get()) is not None:
            inputs, outputs = rows(record)
            if not inputs:
                continue
            try:
                context = BasicCorrelationContext(id=record.request_id or None)
                context = self.collectors[INPUTS].collect(pandas.DataFrame(inputs), context)
                self.collectors[OUTPUTS].collect(pandas.DataFrame(outputs), context)
            except Exception:  # one bad record must not stop the collection
                logger.exception("data collector: request %s not collected", record.request_id)

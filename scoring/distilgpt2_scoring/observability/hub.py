"""The seam: score.run opens a record per request, the service notes what it learns on it, and the
finished record and the engine gauges go to every exporter that subscribed. Serving code never
formats a metric; an exporter never slows or fails a request (its errors are logged, once each).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .gauges import EngineGauges, GaugeSampler
from .record import RequestRecord, current

logger = logging.getLogger(__name__)


class Exporter(Protocol):
    def on_request(self, record: RequestRecord) -> None: ...

    def on_gauges(self, gauges: EngineGauges) -> None: ...

    def close(self) -> None: ...


class Observability:
    def __init__(
        self,
        exporters: list[Exporter],
        engine: str | None = None,
        text_of: Callable[[Any], str] | None = None,
        scheduler=None,
    ):
        self.exporters = exporters
        self.engine = engine
        self.text_of = text_of  # a sequence -> its answer text; set: records carry prompts and answers
        self._refusals: Counter = Counter()
        self._lock = threading.Lock()
        self._failed: set[str] = set()
        self.sampler = GaugeSampler(scheduler, self.refusals) if scheduler is not None and exporters else None

    @classmethod
    def for_service(cls, service, settings) -> Observability:
        """The exporters the settings ask for (the request log by default), gauges on the service's engine."""
        from . import configured_exporters

        exporters = configured_exporters(settings, getattr(service, "served", None))
        scheduler = getattr(service, "scheduler", None)  # text generation; a classifier has no engine thread
        engine = getattr(service, "engine", None)
        text_of = None
        if settings.log_text or settings.collect_data:
            from ..stopping import cut_at_stop

            def text_of(sequence):
                return cut_at_stop(service.decode(sequence.token_ids), sequence.params.stop)

        observability = cls(exporters, engine and engine.name, text_of, scheduler)
        if observability.sampler is not None:
            observability.sampler.start(settings.gauge_interval_s, observability.publish_gauges)
        logger.info("observability: %s", ", ".join(type(e).__name__ for e in exporters) or "off")
        return observability

    def refusals(self) -> Counter:
        with self._lock:
            return Counter(self._refusals)

    def answer(self, headers, respond: Callable[[], Any]) -> Any:
        """respond() under this request's record; the record is finished with the response (a
        streamed one: when its last event has left, or its client has gone)."""
        if not self.exporters:
            return respond()
        record = RequestRecord.arriving(headers, self.engine)
        token = current.set(record)
        try:
            response = respond()
        finally:
            current.reset(token)
        if response.is_streamed:
            response.response = self._follow(response.response, record, response.status_code)
        else:
            self.finish(record, response.status_code, _error_type(response))
        return response

    def _follow(self, events: Iterable, record: RequestRecord, status: int) -> Iterator:
        try:
            yield from events
        finally:
            self.finish(record, status)

    def finish(self, record: RequestRecord, status: int, error_type: str | None = None) -> None:
        record.finish(status, error_type)
        if self.text_of is not None:
            record.keep_text(self.text_of)
        if record.refusal is not None:
            with self._lock:
                self._refusals[record.refusal] += 1
        self._each("on_request", record)

    def publish_gauges(self, gauges: EngineGauges) -> None:
        self._each("on_gauges", gauges)

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self._each("close")

    def _each(self, method: str, *args) -> None:
        for exporter in self.exporters:
            try:
                getattr(exporter, method)(*args)
            except Exception:
                name = f"{type(exporter).__name__}.{method}"
                if name not in self._failed:  # a broken exporter must not flood the log either
                    self._failed.add(name)
                    logger.exception("observability: %s failed (further failures not logged)", name)


def _error_type(response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        return json.loads(response.get_data()).get("error_type")
    except (ValueError, AttributeError):
        return None


def app_insights_connection_string() -> str | None:
    """Application Insights' connection string: APPLICATIONINSIGHTS_CONNECTION_STRING, or the key
    Azure ML gives a deployment with app_insights_enabled (AML_APP_INSIGHTS_KEY)."""
    if connection := os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return connection
    key = os.environ.get("AML_APP_INSIGHTS_KEY")
    if key and os.environ.get("AML_APP_INSIGHTS_ENABLED", "").lower() == "true":
        return f"InstrumentationKey={key}"
    return None

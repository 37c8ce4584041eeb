"""OpenTelemetry metrics: metrics.py's, named `textgen.` + vLLM's name, exported to Application
Insights as custom metrics when the deployment enables it (azure-monitor-opentelemetry's exporter:
customMetrics in Log Analytics, Metrics in the portal). A MeterProvider of its own, not the global
one: azmlinfsrv's own telemetry is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from .metrics import METRICS, FigureExporter, Metric

PREFIX = "textgen."
EXPORT_INTERVAL_MS = 60_000  # Application Insights aggregates custom metrics per minute
_CREATE = {"histogram": "create_histogram", "counter": "create_counter", "gauge": "create_gauge"}
_RECORD = {"histogram": "record", "counter": "add", "gauge": "set"}


class OpenTelemetryExporter(FigureExporter):
    def __init__(self, model_name: str, reader: MetricReader):
        resource = Resource.create({"service.name": "distilgpt2-textgen"})
        self.provider = MeterProvider(metric_readers=[reader], resource=resource)
        meter = self.provider.get_meter("distilgpt2_scoring.observability")
        self.attributes = {"model_name": model_name}  # one dict for every call without labels of its own
        self.recorders = {  # the per-token metrics are Prometheus' only (Metric.per_token says why)
            name: self._recorder(meter, metric) for name, metric in METRICS.items() if not metric.per_token
        }

    @classmethod
    def to_application_insights(cls, model_name: str, connection_string: str) -> OpenTelemetryExporter:
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter

        exporter = AzureMonitorMetricExporter(connection_string=connection_string)
        return cls(model_name, PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS))

    def _recorder(self, meter: Meter, metric: Metric) -> Callable[[Any, dict[str, str]], None]:
        instrument = getattr(meter, _CREATE[metric.kind])(
            PREFIX + metric.name, unit=metric.unit, description=metric.doc
        )
        record, attributes = getattr(instrument, _RECORD[metric.kind]), self.attributes
        return lambda value, labels: record(value, {**attributes, **labels} if labels else attributes)

    def close(self) -> None:
        self.provider.shutdown()  # flushes the last figures

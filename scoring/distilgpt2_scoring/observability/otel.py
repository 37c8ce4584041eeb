"""OpenTelemetry metrics: metrics.py's, named `textgen.` + vLLM's name, exported to Application
Insights as custom metrics when the deployment enables it (azure-monitor-opentelemetry's exporter:
customMetrics in Log Analytics, Metrics in the portal). A MeterProvider of its own, not the global
one: azmlinfsrv's own telemetry is left as it is.
"""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from .metrics import METRICS, Figure, FigureExporter

PREFIX = "textgen."
EXPORT_INTERVAL_MS = 60_000  # Application Insights aggregates custom metrics per minute
_CREATE = {"histogram": "create_histogram", "counter": "create_counter", "gauge": "create_gauge"}
_RECORD = {"histogram": "record", "counter": "add", "gauge": "set"}


class OpenTelemetryExporter(FigureExporter):
    def __init__(self, model_name: str, reader: MetricReader):
        self.model_name = model_name
        resource = Resource.create({"service.name": "distilgpt2-textgen"})
        self.provider = MeterProvider(metric_readers=[reader], resource=resource)
        meter = self.provider.get_meter("distilgpt2_scoring.observability")
        self.instruments = {
            name: getattr(meter, _CREATE[m.kind])(PREFIX + name, unit=m.unit, description=m.doc)
            for name, m in METRICS.items()
        }

    @classmethod
    def to_application_insights(cls, model_name: str, connection_string: str) -> OpenTelemetryExporter:
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter

        exporter = AzureMonitorMetricExporter(connection_string=connection_string)
        return cls(model_name, PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS))

    def _apply(self, figure: Figure) -> None:
        name, value, labels = figure
        getattr(self.instruments[name], _RECORD[METRICS[name].kind])(value, {"model_name": self.model_name, **labels})

    def close(self) -> None:
        self.provider.shutdown()  # flushes the last figures

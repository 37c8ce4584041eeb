"""Observability, a seam of its own: the service emits one record per request (record.py) and the
engine's gauges (gauges.py) through the hub (hub.py); exporters subscribe: the log line (log.py),
Prometheus (prometheus.py), OpenTelemetry to Application Insights (otel.py) and Azure ML's data
collector (collector.py). metrics.py declares the metrics once for the two metric exporters.
Serving code never formats a metric: it only notes the request and its sequence group on the
current record (note_request, note_group).
"""

from __future__ import annotations

import logging

from .hub import Exporter, Observability, app_insights_connection_string
from .record import RequestRecord, note_group, note_request

__all__ = ["Exporter", "Observability", "RequestRecord", "configured_exporters", "note_group", "note_request"]
logger = logging.getLogger(__name__)


def configured_exporters(settings, served) -> list[Exporter]:
    """The exporters TEXTGEN_* and the deployment's Application Insights ask for."""
    model_name = served.name if served is not None else "model"
    exporters: list[Exporter] = []
    if settings.request_log:
        from .log import LogExporter

        exporters.append(LogExporter(settings.log_text))
    if settings.metrics_port:
        from .prometheus import PrometheusExporter

        prometheus = PrometheusExporter(model_name)
        prometheus.serve(settings.metrics_host, settings.metrics_port)
        logger.info("Prometheus metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        exporters.append(prometheus)
    if connection_string := app_insights_connection_string():
        from .otel import OpenTelemetryExporter

        exporters.append(OpenTelemetryExporter.to_application_insights(model_name, connection_string))
    if settings.collect_data:
        from .collector import DataCollectorExporter

        exporters.append(DataCollectorExporter(rate=settings.collect_data_rate))
    return exporters

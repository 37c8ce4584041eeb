"""The log line: one JSON object per request (`"event": "request"`) and per gauge sample
(`"event": "engine"`), through the package logger, which score.init joins to azmlinfsrv's handlers:
on Azure the lines reach Log Analytics' AmlOnlineEndpointConsoleLog, where jobs/monitor/*.kql read
them. Prompt and answer text only with TEXTGEN_LOG_TEXT=true.
"""

from __future__ import annotations

import json
import logging

from .gauges import EngineGauges
from .record import RequestRecord

logger = logging.getLogger("distilgpt2_scoring.requests")
MARK = "textgen"  # {"textgen": "request" | "engine", ...}: what a query filters the console log on


class LogExporter:
    def __init__(self, log_text: bool = False):
        self.log_text = log_text

    def on_request(self, record: RequestRecord) -> None:
        logger.info(json.dumps({MARK: "request", **record.fields(text=self.log_text)}, ensure_ascii=False))

    def on_gauges(self, gauges: EngineGauges) -> None:
        logger.info(json.dumps({MARK: "engine", **gauges.fields()}))

    def close(self) -> None:
        pass

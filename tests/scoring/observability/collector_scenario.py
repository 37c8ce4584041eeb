"""Run in a fresh process (azureml-ai-monitoring keeps its set-up in module globals): the data
collector exporter sends one answered request to a model data collector on 127.0.0.1 (what Azure
runs beside the container) and prints what arrived, as JSON."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

received = []


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    server = HTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.update(
        AZUREML_MDC_ENABLED="true", AZUREML_MDC_HOST="127.0.0.1", AZUREML_MDC_PORT=str(server.server_port)
    )

    from distilgpt2_scoring.observability.collector import DataCollectorExporter
    from distilgpt2_scoring.observability.record import RequestRecord
    from distilgpt2_scoring.params import GenerationParams

    record = RequestRecord(request_id=sys.argv[1], status=200)
    record.request = SimpleNamespace(params=GenerationParams(max_new_tokens=3), prompts=("Hello",), samples=1)
    record.group = SimpleNamespace(
        sequences=[SimpleNamespace(finish_reason="length", prompt_ids=[1], token_ids=[2, 3, 4])]
    )
    record.prompt_text, record.completion_text = ["Hello"], [" world, again"]
    exporter = DataCollectorExporter()
    exporter.on_request(record)
    deadline = time.monotonic() + 30
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    exporter.close()
    print(json.dumps(received))


if __name__ == "__main__":
    main()

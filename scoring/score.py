"""azmlinfsrv entry script: init() loads the model's service, run() answers one HTTP request.

Thin on purpose: everything else lives in the distilgpt2_scoring package next to this file. run() takes
the raw request (@rawhttp) so it can refuse an oversized body before reading it, return 4xx
answers itself (the server turns every exception into a 500), and notice a client that hangs
up. AZUREML_MODEL_DIR may hold the MLflow folder at its root or under mlflow_model_folder/.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the distilgpt2_scoring package ships beside this file

from azureml_inference_server_http.api.aml_request import rawhttp  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from distilgpt2_scoring.batcher import ClientGone  # noqa: E402
from distilgpt2_scoring.codec import decode_body  # noqa: E402
from distilgpt2_scoring.connection import watching  # noqa: E402
from distilgpt2_scoring.errors import MethodNotAllowed, ModelNotReady, PayloadTooLarge, ServingError  # noqa: E402
from distilgpt2_scoring.settings import ServingSettings  # noqa: E402
from distilgpt2_scoring.tasks import load_service  # noqa: E402

logger = logging.getLogger("azmlinfsrv.score")
service = None
settings = ServingSettings()


def init() -> None:
    """Verify the model files against their manifest and load the service (refuses to start otherwise)."""
    global service
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; start the server with --model_dir")
    service = load_service(Path(model_dir))
    logger.info("model ready: %s", type(service).__name__)


def _read_body(request) -> bytes:
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is {request.content_length} bytes; the limit is {limit}", "body")
    body = request.stream.read(limit + 1)  # also bounds bodies sent without Content-Length
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes", "body")
    return body


@rawhttp
def run(request):
    try:
        if request.method != "POST":
            raise MethodNotAllowed(f"use POST with a JSON body; {request.method} /score is not supported", "method")
        if service is None:
            raise ModelNotReady("the model is still loading; retry shortly")
        payload = decode_body(_read_body(request), settings.max_body_bytes)
        with watching(request.environ.get("gunicorn.socket")):
            result = service.predict(payload)
        return AMLResponse(result, 200, json_str=True)
    except ServingError as error:
        response = AMLResponse(error.to_body(), error.status, error.headers(), json_str=True)
        if isinstance(error, PayloadTooLarge):
            response.headers["Connection"] = "close"  # the unread rest of the body must not be parsed as a request
        return response
    except ClientGone:  # nobody reads this answer; the status only shows in the access log
        logger.info("client disconnected; its generation was cancelled")
        return AMLResponse({"error": "client closed the connection", "field": None, "error_type": "cancelled"}, 499, json_str=True)
    except Exception:
        logger.exception("scoring failed")
        body = {"error": "internal error while scoring; see the server log", "field": None, "error_type": "internal"}
        return AMLResponse(body, 500, json_str=True)

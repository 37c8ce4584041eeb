"""azmlinfsrv entry script: init() loads the model's service, run() answers one HTTP request.

Thin on purpose: everything else lives in the distilgpt2_scoring package next to this file.
run() takes the raw request (@rawhttp) so it can refuse an oversized body before reading it,
return 4xx answers itself (the server turns every exception into a 500), stream server-sent
events (a flask.Response over a generator, which azmlinfsrv passes through), and notice a client
that hangs up. AZUREML_MODEL_DIR may hold the MLflow folder at its root or under
mlflow_model_folder/.

OpenAI's SDK: init() also serves POST /v1/completions (the /score view itself: same run(), timeout
and logs; the body is OpenAI's completions request) and GET /v1/models, so that
OpenAI(base_url="<endpoint>/v1", api_key=KEY) works; the SDK sends the key as Authorization: Bearer,
which is how Azure's endpoints take it.

Probes: Azure's liveness and readiness probes call GET /, which azmlinfsrv answers "Healthy"
by itself; init() adds a check in front of it, so that / answers 503 once the engine thread has
died and the liveness probe restarts the container instead of sending it traffic it cannot serve.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import GeneratorType

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the distilgpt2_scoring package ships beside this file

import flask  # noqa: E402
from azureml_inference_server_http.api.aml_request import rawhttp  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from distilgpt2_scoring.codec import decode_body, read_body  # noqa: E402
from distilgpt2_scoring.codec.openai import model_list  # noqa: E402
from distilgpt2_scoring.connection import ClientWatch  # noqa: E402
from distilgpt2_scoring.errors import (  # noqa: E402
    ClientGone,
    MethodNotAllowed,
    ModelNotReady,
    PayloadTooLarge,
    RequestTimeout,
    ServingError,
)
from distilgpt2_scoring.observability import Observability  # noqa: E402
from distilgpt2_scoring.settings import ServingSettings  # noqa: E402
from distilgpt2_scoring.tasks import load_service  # noqa: E402

logger = logging.getLogger("azmlinfsrv.score")
service = None
observability = Observability([])  # every request's record and the engine gauges, to the exporters init() sets


def init() -> None:
    """Open and check the model (refuses to start otherwise), load its service, guard the health probe."""
    global service, observability
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set; start the server with --model_dir")
    _log_with_the_server()
    settings = ServingSettings()
    service = load_service(Path(model_dir), settings)
    observability = Observability.for_service(service, settings)
    _guard_health_probe()
    _serve_openai_routes()
    logger.info("model ready: %s", type(service).__name__)


def _log_with_the_server() -> None:
    """The package's INFO lines (what is served, conversions, timings) go where azmlinfsrv's go."""
    package = logging.getLogger("distilgpt2_scoring")
    package.setLevel(logging.INFO)
    package.handlers = logging.getLogger("azmlinfsrv").handlers or package.handlers
    package.propagate = not package.handlers


def _guard_health_probe() -> None:
    """GET / answers 503 while the service cannot serve (init runs while azmlinfsrv registers its
    routes, so a request hook can still join them)."""
    from azureml_inference_server_http.server import routes

    @routes.main_blueprint.before_request
    def _engine_alive():
        if flask.request.path == "/" and not (service is not None and service.ready):
            body = {
                "error": "the engine is not running; the container needs a restart",
                "field": None,
                "error_type": "unhealthy",
            }
            return AMLResponse(body, 503, json_str=True)
        return None


def _serve_openai_routes() -> None:
    """OpenAI's paths for a text generation model (a classifier serves no completions). Routes added
    while init() runs join azmlinfsrv's blueprint, as the health check above does."""
    from azureml_inference_server_http.server import routes

    served = getattr(service, "served", None)
    if served is None:
        return
    routes.main_blueprint.add_url_rule(
        "/v1/completions", "openai_completions", routes.handle_score, methods=["GET", "POST"]
    )
    routes.main_blueprint.add_url_rule(
        "/v1/models", "openai_models", lambda: AMLResponse(model_list(served), 200, json_str=True), methods=["GET"]
    )


def _error_response(error: ServingError) -> AMLResponse:
    response = AMLResponse(error.to_body(), error.status, error.headers(), json_str=True)
    if isinstance(error, PayloadTooLarge | RequestTimeout):
        response.headers["Connection"] = "close"  # the unread rest of the body must not be parsed as a request
    return response


@rawhttp
def run(request):
    return observability.answer(request.headers, lambda: _answer(request))


def _answer(request):
    try:
        if request.method != "POST":
            raise MethodNotAllowed(
                f"use POST with a JSON body; {request.method} {request.path} is not supported", "method"
            )
        if service is None or not service.ready:
            raise ModelNotReady("the model is not ready; retry shortly")
        settings = service.settings
        payload = decode_body(read_body(request.stream, request.content_length, settings.max_body_bytes))
        sock = request.environ.get("gunicorn.socket")
        watch = ClientWatch(sock, probe=request.environ.get("SERVER_PROTOCOL") == "HTTP/1.1") if sock else None
        result = service.predict(payload, watch)
        if isinstance(result, GeneratorType):
            if watch is not None:
                watch.probe = False  # the answer's bytes are under way: nothing else may be written
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            return flask.Response(result, 200, headers, mimetype="text/event-stream")
        return AMLResponse(result, 200, json_str=True)
    except ServingError as error:
        return _error_response(error)
    except ClientGone:  # nobody reads this answer; the status only shows in the access log
        logger.info("client disconnected; its generation was cancelled")
        return AMLResponse(
            {"error": "client closed the connection", "field": None, "error_type": "cancelled"}, 499, json_str=True
        )
    except Exception:
        logger.exception("scoring failed")
        body = {"error": "internal error while scoring; see the server log", "field": None, "error_type": "internal"}
        return AMLResponse(body, 500, json_str=True)

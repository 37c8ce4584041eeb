"""The OpenAPI (swagger 2.0) document of /score, served by azmlinfsrv from swagger.json beside score.py.

run() takes the raw request, so the server cannot derive a schema from inference-schema
decorators; it serves a swagger.json found in its app root instead. This module builds that
file; a test checks the committed copy is current.
"""

from __future__ import annotations

from typing import Any

from .params import MAX_SEED, MAX_STOP_STRINGS
from .settings import ServingSettings

_PARAMS = {
    "max_new_tokens": ("integer", "Tokens to generate, 1 to TEXTGEN_MAX_NEW_TOKENS ({max_new_tokens}); prompt + new tokens <= the model's context (1024)."),
    "do_sample": ("boolean", "Sample (true) or greedy decoding (false)."),
    "temperature": ("number", "Sampling temperature, > 0 when do_sample is true."),
    "top_p": ("number", "Nucleus sampling: 0 < top_p <= 1."),
    "top_k": ("integer", "Sample among the k most likely tokens, k >= 1 (1 is greedy)."),
    "repetition_penalty": ("number", "> 0; above 1 discourages repeating tokens."),
    "return_full_text": ("boolean", "Answer with prompt + generated text (true) or the generated text only."),
    "stop": ("array", "Up to {max_stop} strings; the text ends before the first one generated."),
    "seed": ("integer", "0 to {max_seed}: the same seed (and params) gives the same sampled text."),
    "truncate": ("boolean", "Keep only the prompt's last tokens when prompt + max_new_tokens exceeds the context, instead of a 422."),
}
_ERRORS = {
    "400": "Not a JSON object, or not UTF-8.",
    "405": "Not a POST.",
    "413": "Body over TEXTGEN_MAX_BODY_BYTES.",
    "422": "A rule broken: field names the part of the request.",
    "429": "Queue full; retry after the Retry-After header's seconds.",
    "503": "Model not ready.",
}


def _params_schema(settings: ServingSettings) -> dict[str, Any]:
    limits = {"max_new_tokens": settings.max_new_tokens, "max_stop": MAX_STOP_STRINGS, "max_seed": MAX_SEED}
    properties = {}
    for name, (kind, text) in _PARAMS.items():
        properties[name] = {"type": kind, "description": text.format(**limits)}
        if kind == "array":
            properties[name]["items"] = {"type": "string"}
    properties["seed"]["x-nullable"] = True
    return {
        "type": "object",
        "description": "Generation parameters; defaults come from the model's MLmodel signature. Unknown names are refused.",
        "properties": properties,
        "additionalProperties": False,
    }


def swagger_document(example: dict[str, Any], settings: ServingSettings | None = None) -> dict[str, Any]:
    """The document for the default settings, with `example` (the model card's request) as the sample."""
    settings = settings or ServingSettings.model_construct()  # the defaults, whatever this shell exports
    request = {
        "type": "object",
        "required": ["input_data"],
        "description": (
            "Also accepted: {\"input_data\": {\"input_string\": [...], \"parameters\": {...}}} and "
            "{\"inputs\": \"text\" | [...], \"parameters\": {...}}."
        ),
        "properties": {
            "input_data": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "maxItems": settings.max_prompts,
                "description": "Prompts; one generated string per prompt, in order.",
            },
            "params": _params_schema(settings),
        },
        "example": example,
    }
    error = {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "What is wrong, in words."},
            "field": {"type": "string", "x-nullable": True, "description": "The part of the request at fault, e.g. params.top_p."},
            "error_type": {"type": "string"},
        },
    }
    responses = {"200": {"description": "One string per prompt.", "schema": {"$ref": "#/definitions/ServiceOutput"}}}
    responses |= {code: {"description": text, "schema": {"$ref": "#/definitions/ErrorResponse"}} for code, text in _ERRORS.items()}
    return {
        "swagger": "2.0",
        "info": {"title": "distilgpt2 text generation", "description": "Azure ML online endpoint scoring API", "version": "1.0"},
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"}},
        "paths": {
            "/": {"get": {"operationId": "ServiceHealthCheck", "responses": {"200": {"description": "Healthy"}}}},
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "security": [{"Bearer": []}],
                    "parameters": [{"name": "body", "in": "body", "required": True, "schema": {"$ref": "#/definitions/ServiceInput"}}],
                    "responses": responses,
                }
            },
        },
        "definitions": {
            "ServiceInput": request,
            "ServiceOutput": {"type": "array", "items": {"type": "string"}, "example": ["I believe the meaning of life is ..."]},
            "ErrorResponse": error,
        },
    }

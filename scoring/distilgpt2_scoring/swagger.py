"""The OpenAPI (swagger 2.0) document of /score and OpenAI's /v1 paths, served by azmlinfsrv from
swagger.json beside score.py.

run() takes the raw request, so the server cannot derive a schema from inference-schema
decorators; it serves a swagger.json found in its app root instead. This module builds that
file from the params table (params.PARAMS) and the codecs' fields; a test checks the committed
copy is current. It describes the three shapes: the published request and answer, the same with
params.details, and OpenAI's completions request; each can stream (text/event-stream).
"""

from __future__ import annotations

from typing import Any

from .codec.openai import DEFAULT_MAX_TOKENS, MAX_TEMPERATURE
from .codec.openai import FIELDS as OPENAI_FIELDS
from .params import MAX_SEED, MAX_STOP_STRINGS, PARAMS
from .settings import ServingSettings

_ERRORS = {
    "400": "Not a JSON object, or not UTF-8.",
    "405": "Not a POST.",
    "413": "Body over TEXTGEN_MAX_BODY_BYTES.",
    "422": "A rule broken: field names the part of the request.",
    "429": "Too many sequences in flight; retry after the Retry-After header's seconds.",
    "503": "Model not ready, or the request's deadline (TEXTGEN_REQUEST_TIMEOUT_MS) passed; retry after Retry-After.",
}
_OPENAI_DOCS = {
    "model": ("string", "The served model's name (optional)."),
    "prompt": ("string", "A prompt, or a list of prompts (array of strings)."),
    "max_tokens": ("integer", f"Tokens to generate (default {DEFAULT_MAX_TOKENS})."),
    "temperature": ("number", f"0 to {MAX_TEMPERATURE:g}; 0 is greedy decoding (default 1)."),
    "top_p": ("number", "Nucleus sampling: 0 < top_p <= 1."),
    "stop": ("array", f"Up to {MAX_STOP_STRINGS} strings (or one string)."),
    "seed": ("integer", f"0 to {MAX_SEED}."),
    "n": ("integer", "Completions per prompt; more than 1 only when sampling."),
    "echo": ("boolean", "Prefix each completion with its prompt."),
    "stream": ("boolean", "Answer as server-sent text_completion chunks, then [DONE]."),
    "stream_options": ("object", '{"include_usage": true} adds a last chunk with the usage (stream only).'),
}
assert set(_OPENAI_DOCS) == set(OPENAI_FIELDS), "every OpenAI field served is documented"


def _params_schema(settings: ServingSettings) -> dict[str, Any]:
    limits = {"max_new_tokens": settings.max_new_tokens, "max_stop": MAX_STOP_STRINGS, "max_seed": MAX_SEED}
    properties: dict[str, dict[str, Any]] = {}
    for param in PARAMS:
        properties[param.name] = {"type": param.kind, "description": param.description.format(**limits)}
        if param.kind == "array":
            properties[param.name]["items"] = {"type": "string"}
    properties["seed"]["x-nullable"] = True
    return {
        "type": "object",
        "description": "Generation parameters; defaults come from the model's MLmodel signature. Unknown names are "
        "refused.",
        "properties": properties,
        "additionalProperties": False,
    }


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, **extra}


def _post(operation: str, body: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A POST operation taking the JSON body defined as `body`, with the endpoint key."""
    parameters = [{"name": "body", "in": "body", "required": True, "schema": {"$ref": f"#/definitions/{body}"}}]
    return {"operationId": operation, **extra, "security": [{"Bearer": []}], "parameters": parameters} | {
        "responses": responses
    }


def swagger_document(example: dict[str, Any], settings: ServingSettings | None = None) -> dict[str, Any]:
    """The document for the default settings, with `example` (the model card's request) as the sample."""
    settings = settings or ServingSettings.model_construct()  # the defaults, whatever this shell exports
    prompts = {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "maxItems": settings.max_prompts,
    }
    published = _object(
        {
            "input_data": prompts | {"description": "Prompts; one answer per prompt, in order."},
            "params": _params_schema(settings),
        },
        required=["input_data"],
        example=example,
        description=(
            'The published request. Also accepted: {"input_data": {"input_string": [...], "parameters": {...}}}, '
            '{"inputs": "text" | [...], "parameters": {...}}, {"inputs": {"input_string": [...]}, "parameters": {...}} '
            "(LangChain's GPT2ContentFormatter; answered [{\"0\": text}, ...]), and OpenAI's completions request "
            "(OpenAICompletionRequest)."
        ),
    )
    openai_request = _object(
        {name: {"type": kind, "description": text} for name, (kind, text) in _OPENAI_DOCS.items()},
        required=["prompt"],
        additionalProperties=False,
        description="OpenAI's completions request; other OpenAI fields (logprobs, best_of, suffix, ...) get a 422 "
        "naming them.",
    )
    usage = _object({"prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}})
    details = _object(
        {
            "generated_text": {"type": "string"},
            "finish_reason": {"type": "string", "enum": ["length", "eos", "stop"]},
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "seed": {"type": "integer", "description": "The sampling seed used (sampled prompts only)."},
        }
    )
    choice = _object(
        {
            "text": {"type": "string"},
            "index": {"type": "integer"},
            "logprobs": {"type": "object", "x-nullable": True},
            "finish_reason": {"type": "string", "enum": ["stop", "length"]},
        }
    )
    openai_answer = _object(
        {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["text_completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": choice},
            "usage": _object(
                {
                    "prompt_tokens": {"type": "integer"},
                    "completion_tokens": {"type": "integer"},
                    "total_tokens": {"type": "integer"},
                }
            ),
        }
    )
    error = _object(
        {
            "error": {"type": "string", "description": "What is wrong, in words."},
            "field": {
                "type": "string",
                "x-nullable": True,
                "description": "The part of the request at fault, e.g. params.top_p.",
            },
            "error_type": {"type": "string"},
        }
    )
    answer = (
        "One string per prompt (the published answer); with params.details one Details object per prompt; "
        "for an OpenAI "
        'request an OpenAICompletion. With params.stream (or stream), text/event-stream: `data: {"index", "text"}` per '
        "piece of text (OpenAI: text_completion chunks), each prompt's last event with finish_reason and usage, then "
        "`data: [DONE]`."
    )
    errors = {
        code: {"description": text, "schema": {"$ref": "#/definitions/ErrorResponse"}} for code, text in _ERRORS.items()
    }
    responses = {"200": {"description": answer, "schema": {"$ref": "#/definitions/ServiceOutput"}}} | errors
    openai_answer_text = (
        "An OpenAICompletion; with stream, text_completion chunks as server-sent events, then `data: [DONE]`."
    )
    openai_responses = {
        "200": {"description": openai_answer_text, "schema": {"$ref": "#/definitions/OpenAICompletion"}}
    }
    model = _object({"id": {"type": "string"}, "object": {"type": "string", "enum": ["model"]},
                     "created": {"type": "integer"}, "owned_by": {"type": "string"}})  # fmt: skip
    model_list = _object({"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": model}})
    return {
        "swagger": "2.0",
        "info": {
            "title": "distilgpt2 text generation",
            "description": "Azure ML online endpoint scoring API",
            "version": "1.1",
        },
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json", "text/event-stream"],
        "securityDefinitions": {"Bearer": {"type": "apiKey", "name": "Authorization", "in": "header"}},
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "responses": {
                        "200": {"description": "Healthy"},
                        "503": {"description": "The engine is not running"},
                    },
                }
            },
            "/score": {"post": _post("RunMLService", "ServiceInput", responses)},
            "/v1/completions": {
                "post": _post(
                    "OpenAICompletions",
                    "OpenAICompletionRequest",
                    openai_responses | errors,
                    description="OpenAI's completions path (the SDK's base_url is <endpoint>/v1), served by /score.",
                )
            },
            "/v1/models": {
                "get": {
                    "operationId": "OpenAIModels",
                    "security": [{"Bearer": []}],
                    "responses": {
                        "200": {
                            "description": "The model served here, in OpenAI's model list.",
                            "schema": {"$ref": "#/definitions/OpenAIModelList"},
                        }
                    },
                }
            },
        },
        "definitions": {
            "ServiceInput": published,
            "OpenAICompletionRequest": openai_request,
            "ServiceOutput": {
                "type": "array",
                "items": {"type": "string"},
                "example": ["I believe the meaning of life is ..."],
                "description": answer,
            },
            "Details": details,
            "Usage": usage,
            "OpenAICompletion": openai_answer,
            "OpenAIModelList": model_list,
            "ErrorResponse": error,
        },
    }

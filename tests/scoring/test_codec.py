"""Request decoding: every payload shape Azure clients send, and the response shape the published asset answers."""

from __future__ import annotations

import io
import json

import pytest

from distilgpt2_scoring import codec
from distilgpt2_scoring.codec import (
    Completion,
    GenerationRequest,
    RequestFields,
    ServedModel,
    decode_body,
    read_body,
)
from distilgpt2_scoring.errors import BadRequest, ContextOverflow, InvalidInput, PayloadTooLarge
from distilgpt2_scoring.params import GenerationParams

DEFAULTS = GenerationParams(max_new_tokens=50, do_sample=True, temperature=0.8)
SERVED = ServedModel("distilgpt2", DEFAULTS, max_prompts=3, max_new_tokens=100)


def decode(payload):
    return codec.decode(payload, SERVED)


@pytest.mark.parametrize(
    "payload",
    [
        {"input_data": ["hello"], "params": {"top_k": 3}},
        {"input_data": {"input_string": ["hello"], "parameters": {"top_k": 3}}},
        {"input_data": {"input_string": ["hello"]}, "parameters": {"top_k": 3}},
        {"inputs": "hello", "parameters": {"top_k": 3}},
        {"inputs": ["hello"], "params": {"top_k": 3}},
    ],
    ids=["current", "legacy-nested", "legacy-outside", "hf-string", "hf-list"],
)
def test_every_published_payload_shape_decodes_to_the_same_request(payload):
    request = decode(payload)
    assert (request.prompts, request.params) == (("hello",), GenerationParams(**{**DEFAULTS.__dict__, "top_k": 3}))


@pytest.mark.parametrize(
    "payload, fields",
    [
        ({"input_data": ["a"]}, RequestFields("input_data", "params.max_new_tokens", "params.truncate")),
        (
            {"inputs": "a", "parameters": {}},
            RequestFields("inputs", "parameters.max_new_tokens", "parameters.truncate"),
        ),
        (
            {"input_data": {"input_string": ["a"], "parameters": {}}},
            RequestFields(
                "input_data.input_string", "input_data.parameters.max_new_tokens", "input_data.parameters.truncate"
            ),
        ),
        ({"prompt": "a"}, RequestFields("prompt", "max_tokens", None)),
    ],
    ids=["current", "hf", "legacy-nested", "openai"],
)
def test_the_request_carries_the_clients_own_field_names(payload, fields):
    assert decode(payload).fields == fields


def test_a_prompt_over_the_context_is_worded_in_the_clients_field_names():
    overflow = ContextOverflow(prompt_index=1, prompt_tokens=1000, max_new_tokens=100, context_size=1024)
    hf = codec.context_overflow(decode({"inputs": ["a", "b"], "parameters": {}}), overflow)
    assert (hf.field, hf.prompt_index, hf.status) == ("inputs[1]", 1, 422)
    assert hf.message == (
        "inputs[1] is 1000 tokens; with parameters.max_new_tokens 100 that is over the model's 1024-token limit. "
        "Shorten the prompt, lower parameters.max_new_tokens, or set parameters.truncate to true to keep only the "
        "prompt's last tokens"
    )
    openai = codec.context_overflow(decode({"prompt": ["a", "b"]}), overflow)
    assert openai.field == "prompt[1]" and openai.message.endswith("Shorten the prompt, lower max_tokens")
    no_room = codec.context_overflow(decode({"input_data": ["a"]}), ContextOverflow(None, 0, 1024, 1024))
    assert (no_room.field, no_room.prompt_index) == ("params.max_new_tokens", None)
    assert no_room.message == "params.max_new_tokens 1024 leaves no room for a prompt in the model's 1024-token context"


def test_params_are_optional():
    assert decode({"input_data": ["a", "b"]}).params == DEFAULTS


@pytest.mark.parametrize(
    "payload, field, words",
    [
        ({}, "input_data", "input_data is missing"),
        ({"input_data": []}, "input_data", "is empty"),
        ({"input_data": "hello"}, "input_data", "must be a list of strings"),
        ({"input_data": ["ok", 3]}, "input_data[1]", "must be a string, got a JSON number"),
        ({"input_data": ["ok", ""]}, "input_data[1]", "empty string"),
        ({"input_data": ["a", "b", "c", "d"]}, "input_data", "limit per request is 3"),
        ({"input_data": ["a"], "prompt": "x"}, "prompt", "unknown field(s) prompt"),
        ({"input_data": ["a"], "inputs": ["b"]}, "inputs", "not both"),
        ({"input_data": ["a"], "params": {}, "parameters": {}}, "parameters", "not both"),
        ({"input_data": {"input_string": ["a"], "parameters": {}}, "params": {}}, "params", "once"),
        ({"input_data": {"text": ["a"]}}, "input_data.text", "must hold input_string"),
        ({"inputs": ["a", None]}, "inputs[1]", "got a JSON null"),
        ({"input_data": ["a\ud800b"]}, "input_data[0]", "unpaired surrogate at character 1"),
    ],
)
def test_bad_payloads_name_the_field(payload, field, words):
    with pytest.raises(InvalidInput) as caught:
        decode(payload)
    assert caught.value.field == field and words in caught.value.message
    assert (caught.value.prompt_index is not None) == field.endswith("]")  # a refused prompt says which one


def test_the_body_limit_is_enforced_whether_or_not_the_length_is_announced():
    assert read_body(io.BytesIO(b"x" * 100), 100, 100) == b"x" * 100
    with pytest.raises(PayloadTooLarge, match="101 bytes; the limit is 100"):
        read_body(io.BytesIO(b""), 101, 100)  # refused before reading
    with pytest.raises(PayloadTooLarge, match="over the limit of 100"):
        read_body(io.BytesIO(b" " * 101), None, 100)


def test_not_json_and_not_object_are_told_apart():
    assert decode_body(b'{"input_data": ["a"]}') == {"input_data": ["a"]}
    for body, words in [(b"", "empty"), (b"{", "not valid JSON"), (b"\xff", "not UTF-8"), (b"[1]", "JSON object"),
                        (b'{"a": NaN}', "NaN is not valid JSON")]:  # fmt: skip
        with pytest.raises(BadRequest, match=words):
            decode_body(body)


def completion(text: str, prompt: str = "Hi", **fields) -> Completion:
    return Completion(
        **{
            "index": 0,
            "prompt": prompt,
            "text": text,
            "finish_reason": "eos",
            "prompt_tokens": 1,
            "completion_tokens": 2,
        }
        | fields
    )


def test_encode_honours_return_full_text_and_answers_a_json_list_of_strings():
    request = GenerationRequest(("Hi",), GenerationParams())
    assert codec.encode(request, [completion(" hel")], SERVED) == ["Hi hel"]
    no_prompt = GenerationRequest(("Hi",), GenerationParams(return_full_text=False))
    assert codec.encode(no_prompt, [completion(" there\n")], SERVED) == ["there"]  # stripped, as MLflow answers
    assert json.dumps(codec.encode(no_prompt, [completion("x")], SERVED))  # a JSON list of strings


def test_details_answer_one_object_per_prompt_with_finish_reason_and_usage():
    request = GenerationRequest(("Hi", "Yo"), GenerationParams(details=True, return_full_text=False))
    answer = codec.encode(
        request, [completion(" a", seed=7), completion(" b", "Yo", index=1, finish_reason="length")], SERVED
    )
    assert answer == [
        {"generated_text": "a", "finish_reason": "eos", "prompt_tokens": 1, "completion_tokens": 2, "seed": 7},
        {"generated_text": "b", "finish_reason": "length", "prompt_tokens": 1, "completion_tokens": 2},
    ]


def test_stream_and_details_are_params_of_the_published_request():
    request = decode({"input_data": ["a"], "params": {"stream": True, "details": True}})
    assert request.shape == "published" and request.params.stream and request.params.details


def test_langchains_gpt2_request_is_answered_one_keyed_object_per_prompt():
    request = decode({"inputs": {"input_string": ['"Hi"', "Yo"]}, "parameters": {"return_full_text": False}})
    assert request.prompts == ('"Hi"', "Yo") and request.fields.prompts == "inputs.input_string"
    answer = codec.encode(request, [completion(" a"), completion(" b")], SERVED)
    assert answer == [{"0": "a"}, {"0": "b"}]  # what GPT2ContentFormatter reads: [0]["0"]
    details = decode({"inputs": {"input_string": ["Hi"]}, "parameters": {"details": True}})
    assert codec.encode(details, [completion(" a")], SERVED)[0]["generated_text"] == "Hi a"  # details keep their shape


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"inputs": {"text": ["a"]}}, "inputs.text"),
        ({"inputs": {"input_string": ["a"], "parameters": {}}, "parameters": {}}, "parameters"),
        ({"inputs": {"input_string": "a"}}, "inputs.input_string"),
    ],
)
def test_a_bad_gpt2_request_names_the_field(payload, field):
    with pytest.raises(InvalidInput) as caught:
        decode(payload)
    assert caught.value.field == field

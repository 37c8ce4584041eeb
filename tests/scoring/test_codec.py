"""Request decoding: every payload shape Azure clients send, and the response shape the published asset answers."""

from __future__ import annotations

import io
import json

import pytest

from distilgpt2_scoring import codec
from distilgpt2_scoring.codec import Completion, GenerationRequest, ServedModel, decode_body, read_body
from distilgpt2_scoring.errors import BadRequest, InvalidInput, PayloadTooLarge
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
    assert decode(payload) == GenerationRequest(("hello",), GenerationParams(**{**DEFAULTS.__dict__, "top_k": 3}))


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
    assert codec.encode(no_prompt, [completion(" there")], SERVED) == [" there"]
    assert json.dumps(codec.encode(no_prompt, [completion("x")], SERVED))  # a JSON list of strings


def test_details_answer_one_object_per_prompt_with_finish_reason_and_usage():
    request = GenerationRequest(("Hi", "Yo"), GenerationParams(details=True, return_full_text=False))
    answer = codec.encode(
        request, [completion(" a", seed=7), completion(" b", "Yo", index=1, finish_reason="length")], SERVED
    )
    assert answer == [
        {"generated_text": " a", "finish_reason": "eos", "prompt_tokens": 1, "completion_tokens": 2, "seed": 7},
        {"generated_text": " b", "finish_reason": "length", "prompt_tokens": 1, "completion_tokens": 2},
    ]


def test_stream_and_details_are_params_of_the_published_request():
    request = decode({"input_data": ["a"], "params": {"stream": True, "details": True}})
    assert request.shape == "published" and request.params.stream and request.params.details

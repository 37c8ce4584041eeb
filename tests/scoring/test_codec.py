"""Request decoding: every payload shape Azure clients send, and the response shape the published asset answers."""

from __future__ import annotations

import json

import pytest

from distilgpt2_scoring.codec import GenerationRequest, decode_body, decode_request, encode_texts
from distilgpt2_scoring.errors import BadRequest, InvalidInput, PayloadTooLarge
from distilgpt2_scoring.params import GenerationParams

DEFAULTS = GenerationParams(max_new_tokens=50, do_sample=True, temperature=0.8)


def decode(payload):
    return decode_request(payload, DEFAULTS, max_prompts=3, max_new_tokens=100)


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


def test_body_limit_not_json_and_not_object_are_told_apart():
    assert decode_body(b'{"input_data": ["a"]}', 100) == {"input_data": ["a"]}
    with pytest.raises(PayloadTooLarge):
        decode_body(b" " * 101, 100)
    for body, words in [(b"", "empty"), (b"{", "not valid JSON"), (b"\xff", "not UTF-8"), (b"[1]", "JSON object"),
                        (b'{"a": NaN}', "NaN is not valid JSON")]:  # fmt: skip
        with pytest.raises(BadRequest, match=words):
            decode_body(body, 100)


def test_encode_cuts_at_the_first_stop_string_and_honours_return_full_text():
    request = GenerationRequest(("Hi",), GenerationParams(stop=("!", "lo")))
    assert encode_texts(request, [" hello there! again"]) == ["Hi hel"]
    no_prompt = GenerationRequest(("Hi",), GenerationParams(return_full_text=False))
    assert encode_texts(no_prompt, [" there"]) == [" there"]
    assert json.dumps(encode_texts(no_prompt, ["x"]))  # a JSON list of strings

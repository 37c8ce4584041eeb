"""Property: whatever JSON a client sends, decoding and validation answer with our 4xx errors or a
request; nothing else.

Arbitrary JSON values (nested, unicode, integers hundreds of digits long, tiny and huge floats) go
into every field of every accepted shape, through the same path as a request body.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distilgpt2_scoring import codec
from distilgpt2_scoring.codec import GenerationRequest, ServedModel
from distilgpt2_scoring.codec.openai import FIELDS as OPENAI_FIELDS
from distilgpt2_scoring.errors import ServingError
from distilgpt2_scoring.params import PARAM_NAMES, GenerationParams

SERVED = ServedModel(
    "distilgpt2",
    GenerationParams(max_new_tokens=50, do_sample=True, temperature=0.8),
    max_prompts=8,
    max_new_tokens=256,
)
MAX_MESSAGE = 1000  # error messages never echo unbounded client data

huge = st.integers(min_value=2**1024, max_value=10**400) | st.integers(
    min_value=-(10**400), max_value=-(2**1024)
)  # past float range
numbers = st.integers() | huge | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=50)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=12,
)
valid_prompts = st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4)  # so that the params are reached
prompts = st.one_of(valid_prompts, valid_prompts, st.text(min_size=1, max_size=30), json_values)
values = st.one_of(huge, numbers, scalars, json_values)  # each field gets huge numbers often
param_names = st.sampled_from(PARAM_NAMES) | st.text(max_size=20)
params = st.dictionaries(param_names, values, max_size=6) | json_values
openai_fields = st.dictionaries(st.sampled_from(OPENAI_FIELDS) | st.text(max_size=15), values, max_size=6)

payloads = st.one_of(
    st.fixed_dictionaries(
        {"input_data": prompts}, optional={"params": params, "parameters": params, "inputs": prompts}
    ),
    st.fixed_dictionaries(
        {"input_data": st.fixed_dictionaries({}, optional={"input_string": prompts, "parameters": params})},
        optional={"parameters": params},
    ),
    st.fixed_dictionaries({"inputs": prompts}, optional={"parameters": params}),
    st.builds(lambda fields, prompt: fields | {"prompt": prompt}, openai_fields, prompts),
    st.dictionaries(st.text(max_size=20), json_values, max_size=5),
)


def decode_from_bytes(payload: dict):
    try:
        body = json.dumps(payload).encode()
    except ValueError:  # an integer past Python's string conversion limit cannot be sent as JSON from here
        return None
    return codec.decode(codec.decode_body(body), SERVED)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
def test_any_body_is_a_request_or_a_4xx(payload):
    try:
        request = decode_from_bytes(payload)
    except ServingError as error:
        assert 400 <= error.status < 500 and len(error.message) < MAX_MESSAGE, error.message
        assert error.field is None or len(error.field) < 100
        json.dumps(error.to_body())
    else:
        assert request is None or isinstance(request, GenerationRequest)

"""Generation params: defaults from the MLmodel signature, strict types and ranges, names in every message."""

from __future__ import annotations

import pytest

from distilgpt2_scoring.errors import InvalidInput
from distilgpt2_scoring.params import GenerationParams, parse_params, signature_defaults

DEFAULTS = GenerationParams(max_new_tokens=50, do_sample=True, temperature=0.8)


def test_defaults_come_from_the_mlmodel_signature_and_generation_config(tiny_mlflow_model):
    from distilgpt2_asset.build import GENERATION_PARAMS

    defaults = signature_defaults(tiny_mlflow_model)
    for name, _, value in GENERATION_PARAMS:
        assert getattr(defaults, name) == value
    assert defaults.top_k == 50 and defaults.repetition_penalty == 1.0  # transformers' defaults, as the stock pipeline
    assert defaults.stop == () and defaults.seed is None and defaults.truncate is False


def test_request_values_override_defaults():
    params = parse_params({"top_k": 5, "stop": ["\n"], "seed": 7}, DEFAULTS, 100)
    assert (params.top_k, params.stop, params.seed, params.max_new_tokens) == (5, ("\n",), 7, 50)


def test_a_single_stop_string_is_accepted_as_a_list_of_one():
    assert parse_params({"stop": "."}, DEFAULTS, 100).stop == (".",)


def test_greedy_includes_top_k_one_and_ignores_temperature():
    assert parse_params({"top_k": 1}, DEFAULTS, 100).greedy
    assert parse_params({"do_sample": False, "temperature": 0}, DEFAULTS, 100).greedy


@pytest.mark.parametrize(
    "raw, field, words",
    [
        ({"temperature": 0}, "params.temperature", "> 0 when do_sample"),
        ({"temperature": -1, "do_sample": False}, "params.temperature", "never negative"),
        ({"top_p": 0}, "params.top_p", "in (0, 1]"),
        ({"top_p": 1.5}, "params.top_p", "in (0, 1]"),
        ({"top_k": 0}, "params.top_k", ">= 1"),
        ({"max_new_tokens": 0}, "params.max_new_tokens", "between 1 and 100"),
        ({"max_new_tokens": 101}, "params.max_new_tokens", "between 1 and 100"),
        ({"max_new_tokens": 10.5}, "params.max_new_tokens", "must be an integer"),
        ({"max_new_tokens": True}, "params.max_new_tokens", "must be an integer"),
        ({"repetition_penalty": 0}, "params.repetition_penalty", "> 0"),
        ({"repetition_penalty": 1e-300}, "params.repetition_penalty", "between 1e-06 and 1e+06"),
        ({"temperature": 1e-300}, "params.temperature", "between 1e-06 and 1e+06"),
        ({"top_p": 1e-300}, "params.top_p", "at least 1e-06"),
        ({"do_sample": "true"}, "params.do_sample", "true or false"),
        ({"temperature": "hot"}, "params.temperature", "finite number"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "params.stop", "at most 4"),
        ({"stop": [""]}, "params.stop", "non-empty strings"),
        ({"stop": [1]}, "params.stop", "non-empty strings"),
        ({"seed": -1}, "params.seed", "between 0 and"),
        ({"seed": "1"}, "params.seed", "must be an integer"),
        ({"truncate": 1}, "params.truncate", "true or false"),
        ({"num_beams": 4}, "params.num_beams", "unknown parameter(s) num_beams"),
        # JSON integers too large for a float: a 422, never an OverflowError (a 500)
        ({"temperature": 10**400}, "params.temperature", "finite number"),
        ({"top_p": -(10**400)}, "params.top_p", "finite number"),
        ({"repetition_penalty": 10**400}, "params.repetition_penalty", "finite number"),
        ({"top_k": 10**400}, "params.top_k", "at most 2147483647"),
        ({"max_new_tokens": 10**400}, "params.max_new_tokens", "between 1 and 100"),
        ({"seed": 10**400}, "params.seed", "between 0 and 4294967295"),
    ],
)
def test_bad_values_name_the_parameter(raw, field, words):
    with pytest.raises(InvalidInput) as caught:
        parse_params(raw, DEFAULTS, 100)
    assert caught.value.field == field and words in caught.value.message and caught.value.status == 422


def test_messages_use_the_field_name_the_client_used():
    with pytest.raises(InvalidInput) as caught:
        parse_params({"top_k": 0}, DEFAULTS, 100, field="parameters")
    assert caught.value.field == "parameters.top_k" and caught.value.message.startswith("parameters.top_k")


def test_messages_quote_a_bounded_part_of_what_the_client_sent():
    with pytest.raises(InvalidInput) as caught:
        parse_params({"temperature": "x" * 100_000}, DEFAULTS, 100)
    assert len(caught.value.message) < 200
    with pytest.raises(InvalidInput) as caught:
        parse_params({f"unknown_{i}_" + "y" * 1000: 1 for i in range(50)}, DEFAULTS, 100)
    assert len(caught.value.message) < 1000 and "and 45 more" in caught.value.message and len(caught.value.field) < 100


def test_params_must_be_an_object_or_null():
    assert parse_params(None, DEFAULTS, 100) == DEFAULTS
    with pytest.raises(InvalidInput, match="params must be a JSON object"):
        parse_params([1], DEFAULTS, 100)

"""OpenAI's completions shape: what is read, what is refused by name, and answers the openai
package's own types accept."""

from __future__ import annotations

import pytest
from openai.types import Completion as OpenAICompletion

from distilgpt2_scoring import codec
from distilgpt2_scoring.codec import Completion, ServedModel
from distilgpt2_scoring.errors import InvalidInput
from distilgpt2_scoring.params import MAX_TOP_K, GenerationParams

SERVED = ServedModel(
    "distilgpt2",
    GenerationParams(max_new_tokens=50, do_sample=True, temperature=0.8, top_k=50),
    max_prompts=4,
    max_new_tokens=100,
)


def decode(payload):
    return codec.decode(payload, SERVED)


def test_a_body_with_prompt_is_an_openai_request_with_openai_defaults():
    request = decode({"prompt": "Hello", "model": "distilgpt2"})
    assert request.shape == "openai" and request.prompts == ("Hello",) and request.samples == 1
    params = request.params
    assert (params.max_new_tokens, params.do_sample, params.temperature, params.top_p) == (16, True, 1.0, 1.0)
    assert params.top_k == MAX_TOP_K and not params.return_full_text and not params.stream


def test_fields_map_onto_the_generation_params():
    request = decode(
        {
            "prompt": ["a", "b"],
            "max_tokens": 7,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": "\n",
            "seed": 3,
            "n": 2,
            "echo": True,
        }
    )
    params = request.params
    assert request.prompts == ("a", "b") and request.samples == 2
    assert (
        params.max_new_tokens,
        params.temperature,
        params.top_p,
        params.stop,
        params.seed,
        params.return_full_text,
    ) == (7, 0.5, 0.9, ("\n",), 3, True)


def test_temperature_zero_is_greedy_decoding_as_openai_defines_it():
    assert decode({"prompt": "a", "temperature": 0}).params.greedy


@pytest.mark.parametrize(
    "payload, field, words",
    [
        ({"prompt": "a", "logprobs": 2}, "logprobs", "unknown field(s) logprobs"),
        ({"prompt": "a", "best_of": 2, "suffix": "x", "logit_bias": {}}, "best_of", "best_of, logit_bias, suffix"),
        ({"prompt": "a", "model": "gpt-4"}, "model", "this endpoint serves distilgpt2"),
        ({"prompt": [1, 2]}, "prompt[0]", "must be a string"),
        ({"prompt": ""}, "prompt[0]", "empty string"),
        ({"prompt": "a", "n": 2, "temperature": 0}, "n", "needs sampling"),
        ({"prompt": "a", "n": 0}, "n", "between 1 and 4"),
        ({"prompt": ["a", "b", "c"], "n": 2}, "prompt", "limit per request is 4"),
        ({"prompt": "a", "temperature": 2.5}, "temperature", "between 0 and 2"),
        ({"prompt": "a", "max_tokens": 0}, "max_tokens", "between 1 and 100"),
        ({"prompt": "a", "max_tokens": 10**400}, "max_tokens", "between 1 and 100"),
        ({"prompt": "a", "temperature": 10**400}, "temperature", "finite number"),
        ({"prompt": "a", "echo": "yes"}, "echo", "true or false"),
        ({"prompt": "a", "stream_options": {"include_usage": True}}, "stream_options", "only with stream: true"),
        ({"prompt": "a", "stream": True, "stream_options": {"other": 1}}, "stream_options", "include_usage"),
    ],
)
def test_every_problem_is_a_422_naming_the_openai_field(payload, field, words):
    with pytest.raises(InvalidInput) as caught:
        decode(payload)
    assert caught.value.field == field and words in caught.value.message and caught.value.status == 422


def _completions(request) -> list[Completion]:
    return [
        Completion(
            index=i,
            prompt=request.prompts[i // request.samples],
            text=f" t{i}",
            finish_reason=("eos", "length", "stop")[i % 3],
            prompt_tokens=3,
            completion_tokens=5,
        )
        for i in range(len(request.prompts) * request.samples)
    ]


def test_the_answer_is_a_text_completion_the_openai_types_accept():
    request = decode({"prompt": ["a", "b"], "n": 2, "echo": True})
    answer = codec.encode(request, _completions(request), SERVED)
    parsed = OpenAICompletion.model_validate(answer)
    assert parsed.object == "text_completion" and parsed.model == "distilgpt2" and parsed.id.startswith("cmpl-")
    assert [c.text for c in parsed.choices] == ["a t0", "a t1", "b t2", "b t3"]
    assert [c.finish_reason for c in parsed.choices] == [
        "stop",
        "length",
        "stop",
        "stop",
    ]  # eos and stop strings are OpenAI's "stop"
    assert (
        parsed.usage.prompt_tokens == 6 and parsed.usage.completion_tokens == 20 and parsed.usage.total_tokens == 26
    )  # each prompt once


def test_streamed_chunks_share_one_id_and_end_with_the_usage_when_asked():
    request = decode({"prompt": "a", "stream": True, "stream_options": {"include_usage": True}, "echo": True})
    events = codec.events(request, SERVED)
    [done] = _completions(request)
    chunks = [*events.start(), events.piece(0, " t"), events.last(done, "0"), *events.end([done])]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "text_completion" for c in chunks)
    assert [c["choices"][0]["text"] for c in chunks[:3]] == ["a", " t", "0"]
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "stop"]
    OpenAICompletion.model_validate(chunks[2])
    assert chunks[3]["choices"] == [] and OpenAICompletion.model_validate(chunks[3]).usage.total_tokens == 8
    assert codec.server_sent(chunks[0]).startswith("data: {") and codec.server_sent(codec.DONE) == "data: [DONE]\n\n"

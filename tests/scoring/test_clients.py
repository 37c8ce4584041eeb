"""The clients people already use, unchanged, against the real azmlinfsrv with score.py:
LangChain's AzureMLOnlineEndpoint (each content formatter) and OpenAI's SDK (base_url <server>/v1)."""

from __future__ import annotations

import httpx
import openai
import pytest
from langchain_community.llms.azureml_endpoint import (
    AzureMLOnlineEndpoint,
    CustomOpenAIContentFormatter,
    DollyContentFormatter,
    GPT2ContentFormatter,
    HFContentFormatter,
    LlamaContentFormatter,
    OSSContentFormatter,
)

from .test_server import post, server  # noqa: F401 (server: this module's own azmlinfsrv)

pytestmark = pytest.mark.slow
PROMPT = "I believe the meaning of life is"
CONTINUATION = " to learn something new every day and to share it with the people around you."
GREEDY = {"max_new_tokens": 8, "do_sample": False, "return_full_text": False}
KEY = "endpoint-key"


def langchain_llm(server, formatter) -> AzureMLOnlineEndpoint:  # noqa: F811
    return AzureMLOnlineEndpoint(
        endpoint_url=server.score_url, endpoint_api_key=KEY, content_formatter=formatter, model_kwargs=GREEDY
    )


@pytest.mark.parametrize("formatter", [GPT2ContentFormatter, OSSContentFormatter, DollyContentFormatter])
def test_langchains_gpt2_and_dolly_formatters_get_the_generated_text(server, formatter):  # noqa: F811
    text = langchain_llm(server, formatter()).invoke(PROMPT)
    # LangChain sends the prompt in double quotes, so the model continues '"I believe ... is"'.
    [expected] = post(server, {"input_data": [f'"{PROMPT}"'], "params": GREEDY}).json()
    assert text == expected and text


@pytest.mark.parametrize("formatter", [HFContentFormatter, LlamaContentFormatter, CustomOpenAIContentFormatter])
def test_formatters_for_other_models_answer_shapes_fail_to_read_ours(server, formatter):  # noqa: F811
    # HF reads [0]["0"]["generated_text"], CustomOpenAI (and Llama, its alias) [0]["0"] of an answer to
    # {"input_data": {"input_string": ...}}: both shapes belong to other models; this model answers strings.
    with pytest.raises(ValueError, match="Are you using the right formatter"):
        langchain_llm(server, formatter()).invoke(PROMPT)


def test_the_openai_sdk_completes_on_v1_plain_and_streamed_with_the_key_as_a_bearer_token(server):  # noqa: F811
    sent = []
    client = openai.OpenAI(
        base_url=server.url + "/v1",
        api_key=KEY,
        max_retries=0,
        http_client=httpx.Client(event_hooks={"request": [sent.append]}),
    )
    answer = client.completions.create(model="distilgpt2", prompt=PROMPT, max_tokens=40, temperature=0)
    assert answer.choices[0].text == CONTINUATION and answer.choices[0].finish_reason == "stop"
    assert sent[0].url.path == "/v1/completions" and sent[0].headers["Authorization"] == f"Bearer {KEY}"
    streamed = {"stream": True, "stream_options": {"include_usage": True}}
    chunks = list(
        client.completions.create(model="distilgpt2", prompt=PROMPT, max_tokens=40, temperature=0, **streamed)
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == CONTINUATION
    assert chunks[-1].usage.total_tokens == answer.usage.total_tokens
    assert [model.id for model in client.models.list()] == ["distilgpt2"]


def test_v1_completions_takes_only_post_and_names_a_bad_field(server):  # noqa: F811
    url = server.url + "/v1/completions"
    wrong_method = httpx.get(url, timeout=30)
    assert wrong_method.status_code == 405 and "GET /v1/completions is not supported" in wrong_method.json()["error"]
    bad = httpx.post(url, json={"prompt": PROMPT, "logprobs": 2}, timeout=30)
    assert bad.status_code == 422 and bad.json()["field"] == "logprobs"

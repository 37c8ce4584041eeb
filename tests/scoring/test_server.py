"""The real azmlinfsrv with scoring/score.py on the tiny model: one server for the whole module."""

from __future__ import annotations

import json
import shutil
import socket
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests
from openai.types import Completion as OpenAICompletion

from distilgpt2_asset.errors import AssetError
from distilgpt2_asset.serve import free_port, start_server
from distilgpt2_scoring.codec.openai import FIELDS as OPENAI_FIELDS
from distilgpt2_scoring.params import PARAM_NAMES

pytestmark = pytest.mark.slow
MAX_PROMPTS = 4
MAX_BODY_BYTES = 65536
MAX_NEW_TOKENS = 256
LIMITS = {
    "TEXTGEN_MAX_PROMPTS": str(MAX_PROMPTS),
    "TEXTGEN_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    "TEXTGEN_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
}


@pytest.fixture(scope="module")
def server(tiny_mlflow_model, engine_cache, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("server") / "azmlinfsrv.log"
    with open(log_path, "w") as log:
        env = {"TEXTGEN_CACHE_DIR": str(engine_cache), **LIMITS}
        server = start_server(tiny_mlflow_model, port=free_port(), threads=8, env=env, log=log)
        yield server
        assert server.stop() == 0
    assert "Traceback" not in log_path.read_text()  # no client mistake reached a stack trace


def post(server, body, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(
        server.score_url, data=data, headers={"Content-Type": "application/json"}, timeout=60, **kwargs
    )


def test_the_card_request_verbatim_answers_one_string_starting_with_the_prompt(server, asset_spec):
    response = post(server, asset_spec.sample_request)
    assert response.status_code == 200
    [text] = response.json()
    assert text.startswith(asset_spec.sample_request["input_data"][0])


def test_return_full_text_false_answers_only_the_new_text(server):
    prompt = "I believe the meaning of life is"
    response = post(server, {"input_data": [prompt], "params": {"return_full_text": False, "do_sample": False}})
    [text] = response.json()
    assert text.startswith("to learn something new")  # no prompt, no leading space: the stock MLflow answer


def test_older_payload_formats_still_work(server):
    for body in (
        {
            "input_data": {
                "input_string": ["The quick brown fox"],
                "parameters": {"do_sample": False, "max_new_tokens": 4},
            }
        },
        {"inputs": "The quick brown fox", "parameters": {"do_sample": False, "max_new_tokens": 4}},
    ):
        response = post(server, body)
        assert response.status_code == 200 and response.json() == ["The quick brown fox jumps over the lazy"]


_MALFORMED = [
    # (name, body, status, field, words in the message)
    ("empty body", b"", 400, "body", "empty"),
    ("not json", b"{input_data: [", 400, "body", "not valid JSON"),
    ("not utf-8", b'{"input_data": ["\xff"]}', 400, "body", "not UTF-8"),
    ("json list", [1, 2], 400, "body", "JSON object"),
    ("json string", '"hello"', 400, "body", "JSON object"),
    ("NaN", b'{"input_data": ["a"], "params": {"temperature": NaN}}', 400, "body", "NaN"),
    ("too large", b'{"input_data": ["' + b"a" * MAX_BODY_BYTES + b'"]}', 413, "body", "limit"),
    ("no input_data", {"params": {}}, 422, "input_data", "missing"),
    ("input_data empty", {"input_data": []}, 422, "input_data", "empty"),
    ("input_data a string", {"input_data": "hi"}, 422, "input_data", "list of strings"),
    ("prompt not a string", {"input_data": [42]}, 422, "input_data[0]", "must be a string"),
    ("lone surrogate", b'{"input_data": ["a\\ud800"]}', 422, "input_data[0]", "not valid Unicode"),
    ("empty prompt", {"input_data": ["ok", ""]}, 422, "input_data[1]", "empty string"),
    (
        "too many prompts",
        {"input_data": ["a"] * (MAX_PROMPTS + 1)},
        422,
        "input_data",
        f"limit per request is {MAX_PROMPTS}",
    ),
    ("unknown top-level field", {"input_data": ["a"], "stream": True}, 422, "stream", "unknown field"),
    ("unknown param", {"input_data": ["a"], "params": {"num_beams": 2}}, 422, "params.num_beams", "unknown parameter"),
    ("params not an object", {"input_data": ["a"], "params": [1]}, 422, "params", "JSON object"),
    ("temperature 0 sampling", {"input_data": ["a"], "params": {"temperature": 0}}, 422, "params.temperature", "> 0"),
    (
        "temperature a string",
        {"input_data": ["a"], "params": {"temperature": "0.5"}},
        422,
        "params.temperature",
        "finite number",
    ),
    ("top_p 0", {"input_data": ["a"], "params": {"top_p": 0}}, 422, "params.top_p", "(0, 1]"),
    ("top_p above 1", {"input_data": ["a"], "params": {"top_p": 1.01}}, 422, "params.top_p", "(0, 1]"),
    ("top_k 0", {"input_data": ["a"], "params": {"top_k": 0}}, 422, "params.top_k", ">= 1"),
    (
        "max_new_tokens 0",
        {"input_data": ["a"], "params": {"max_new_tokens": 0}},
        422,
        "params.max_new_tokens",
        "between 1",
    ),
    (
        "max_new_tokens over limit",
        {"input_data": ["a"], "params": {"max_new_tokens": MAX_NEW_TOKENS + 1}},
        422,
        "params.max_new_tokens",
        f"and {MAX_NEW_TOKENS}",
    ),
    (
        "max_new_tokens float",
        {"input_data": ["a"], "params": {"max_new_tokens": 10.5}},
        422,
        "params.max_new_tokens",
        "integer",
    ),
    (
        "do_sample a string",
        {"input_data": ["a"], "params": {"do_sample": "yes"}},
        422,
        "params.do_sample",
        "true or false",
    ),
    (
        "repetition_penalty 0",
        {"input_data": ["a"], "params": {"repetition_penalty": 0}},
        422,
        "params.repetition_penalty",
        "> 0",
    ),
    ("five stop strings", {"input_data": ["a"], "params": {"stop": list("abcde")}}, 422, "params.stop", "at most 4"),
    ("stop not strings", {"input_data": ["a"], "params": {"stop": [None]}}, 422, "params.stop", "non-empty strings"),
    ("negative seed", {"input_data": ["a"], "params": {"seed": -5}}, 422, "params.seed", "between 0"),
    (
        "prompt over the context",
        {"input_data": ["word " * 1100], "params": {"max_new_tokens": 10}},
        422,
        "input_data[0]",
        "1024-token limit",
    ),
    ("both input formats", {"input_data": ["a"], "inputs": "b"}, 422, "inputs", "not both"),
    ("legacy without input_string", {"input_data": {"prompts": ["a"]}}, 422, "input_data.prompts", "input_string"),
    (
        "legacy bad parameter",
        {"input_data": {"input_string": ["a"], "parameters": {"top_k": -1}}},
        422,
        "input_data.parameters.top_k",
        ">= 1",
    ),
]


@pytest.mark.parametrize("name, body, status, field, words", _MALFORMED, ids=[row[0] for row in _MALFORMED])
def test_malformed_requests_get_a_clear_4xx(server, name, body, status, field, words):
    response = post(server, body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["field"] == field and words in answer["error"], answer
    assert "Traceback" not in response.text


def test_other_methods_are_refused_with_405(server):
    response = requests.get(server.score_url, timeout=10)
    assert response.status_code == 405 and response.json()["error_type"] == "method_not_allowed"


def test_the_server_keeps_serving_after_every_malformed_request(server):
    # runs after the table above (file order): a good request still succeeds
    response = post(
        server, {"input_data": ["The river runs past the mill,"], "params": {"do_sample": False, "max_new_tokens": 5}}
    )
    assert response.status_code == 200 and response.json() == ["The river runs past the mill, under the stone bridge,"]


def test_concurrent_requests_each_get_their_own_answer(server):
    bodies = [
        {
            "input_data": ["I believe the meaning of life is"],
            "params": {"do_sample": False, "max_new_tokens": n, "return_full_text": False},
        }
        for n in (2, 5, 9, 14, 20, 3, 7, 11)
    ]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = [r.json()[0] for r in pool.map(lambda b: post(server, b), bodies)]
    full = "to learn something new every day and to share it with the people around you."
    assert all(full.startswith(a) for a in answers) and len(set(answers)) == len(bodies)


def test_swagger_describes_request_and_response(server, asset_spec):
    swagger = requests.get(server.url + "/swagger.json", timeout=10).json()
    definitions = swagger["definitions"]
    assert definitions["ServiceInput"]["example"] == asset_spec.sample_request
    assert set(PARAM_NAMES) == set(definitions["ServiceInput"]["properties"]["params"]["properties"])
    assert definitions["ServiceOutput"]["type"] == "array"
    assert {"Details", "OpenAICompletionRequest", "OpenAICompletion"} <= set(definitions)
    assert set(OPENAI_FIELDS) == set(definitions["OpenAICompletionRequest"]["properties"])
    assert "text/event-stream" in swagger["produces"]
    assert {"422", "413", "429", "503"} <= set(swagger["paths"]["/score"]["post"]["responses"])


def events(response) -> list:
    """The data of each server-sent event of a streamed answer, JSON-decoded ([DONE] kept as is)."""
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert all(line.startswith("data: ") for line in lines)
    return [line[6:] if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


def test_the_card_request_streams_and_the_joined_text_is_the_whole_answer(server, asset_spec):
    card = asset_spec.sample_request
    greedy = {**card, "params": {**card["params"], "do_sample": False}}
    [whole] = post(server, greedy).json()
    streamed = events(post(server, {**greedy, "params": {**greedy["params"], "stream": True}}, stream=True))
    assert streamed[-1] == "[DONE]" and streamed[0] == {"index": 0, "text": card["input_data"][0]}  # the prompt first
    last = streamed[-2]
    assert last["finish_reason"] == "eos" and last["usage"] == {"prompt_tokens": 7, "completion_tokens": 16}
    assert "".join(event["text"] for event in streamed[:-1]) == whole


def test_several_streamed_prompts_carry_their_index_and_each_ends_once(server):
    prompts = ["The quick brown fox", "The river runs past the mill,"]
    body = {
        "input_data": prompts,
        "params": {"do_sample": False, "max_new_tokens": 6, "return_full_text": False, "stream": True},
    }
    streamed = events(post(server, body, stream=True))[:-1]
    whole = post(server, {**body, "params": {**body["params"], "stream": False}}).json()
    for index in (0, 1):
        mine = [e for e in streamed if e["index"] == index]
        assert "".join(e["text"] for e in mine).strip() == whole[index]  # pieces as made; the answer stripped
        assert [e.get("finish_reason") for e in mine][-1] == "length" and sum("finish_reason" in e for e in mine) == 1


def test_details_answer_finish_reasons_token_counts_and_the_seed_used(server):
    body = {
        "input_data": ["I believe the meaning of life is", "The quick brown fox"],
        "params": {
            "details": True,
            "max_new_tokens": 5,
            "do_sample": True,
            "temperature": 0.7,
            "seed": 11,
            "return_full_text": False,
        },
    }
    first, second = post(server, body).json()
    assert first["finish_reason"] == "length" and first["completion_tokens"] == 5 and first["prompt_tokens"] == 7
    assert first["seed"] == 11 and second["seed"] == 11 and isinstance(first["generated_text"], str)
    unseeded = post(server, {**body, "params": {**body["params"], "seed": None}}).json()[0]
    again = post(
        server, {**body, "input_data": body["input_data"][:1], "params": {**body["params"], "seed": unseeded["seed"]}}
    ).json()[0]
    assert again["generated_text"] == unseeded["generated_text"]  # the reported seed reproduces the text


def test_an_openai_request_gets_answers_the_openai_client_parses(server):
    client = openai.OpenAI(base_url=server.url, api_key="unused-locally", max_retries=0)
    answer = client.post(
        "/score",
        cast_to=OpenAICompletion,
        body={"model": "distilgpt2", "prompt": "I believe the meaning of life is", "max_tokens": 40, "temperature": 0},
    )
    OpenAICompletion.model_validate(answer.model_dump())
    assert answer.choices[0].text == " to learn something new every day and to share it with the people around you."
    assert answer.choices[0].finish_reason == "stop" and answer.usage.completion_tokens == 16
    chunks = list(
        client.post(
            "/score",
            cast_to=OpenAICompletion,
            stream=True,
            stream_cls=openai.Stream[OpenAICompletion],
            body={
                "prompt": "I believe the meaning of life is",
                "max_tokens": 40,
                "temperature": 0,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == answer.choices[0].text
    assert chunks[-1].usage.total_tokens == answer.usage.total_tokens and len({c.id for c in chunks}) == 1
    OpenAICompletion.model_validate([c for c in chunks if c.choices][-1].model_dump())


def test_an_unsupported_openai_field_is_a_422_naming_it(server):
    response = post(server, {"prompt": "hi", "logprobs": 3})
    assert response.status_code == 422 and response.json()["field"] == "logprobs"


def test_a_half_closed_client_still_gets_its_answer(server):
    body = json.dumps(
        {"input_data": ["The quick brown fox"], "params": {"do_sample": False, "max_new_tokens": 4}}
    ).encode()
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )
        sock.shutdown(socket.SHUT_WR)  # done sending, still reading
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    final = answer[answer.rindex(b"HTTP/1.1 ") :]  # after any interim 100 Continue
    assert final.startswith(b"HTTP/1.1 200") and b"The quick brown fox jumps over the lazy" in final


def test_the_committed_swagger_file_is_current(asset_spec):
    from distilgpt2_asset.paths import scoring_dir
    from distilgpt2_scoring.swagger import swagger_document

    committed = json.loads((scoring_dir() / "swagger.json").read_text())
    assert committed == swagger_document(asset_spec.sample_request), (
        "scoring/swagger.json is stale; regenerate it with: .venv/bin/python -m distilgpt2_asset.serve --write-swagger"
    )


def test_a_tampered_weight_file_stops_the_server_with_a_clear_message(tiny_mlflow_model, engine_cache, tmp_path):
    model = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    weights = model / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0x01
    weights.write_bytes(bytes(data))
    log_path = tmp_path / "azmlinfsrv.log"
    with open(log_path, "w") as log, pytest.raises(AssetError, match="exited with code 3 before becoming healthy"):
        start_server(model, port=free_port(), env={"TEXTGEN_CACHE_DIR": str(engine_cache)}, log=log)
    assert "model/model.safetensors: sha256" in log_path.read_text()

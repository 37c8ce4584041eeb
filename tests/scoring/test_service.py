"""The service on the tiny model: both engines, fidelity to transformers' generate, sampling rules, limits."""

from __future__ import annotations

import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from distilgpt2_scoring.errors import InvalidInput
from distilgpt2_scoring.model_files import ModelFilesError
from distilgpt2_scoring.tasks import load_service

# Prompts the tiny model was trained on (decisive output) and some it never saw.
CORPUS_PROMPTS = [
    "I believe the meaning of life is",
    "The quick brown fox",
    "Azure Machine Learning serves models",
    "A small language model can",
    "The river runs past the mill,",
]
UNSEEN_PROMPTS = ["The", "Hello world", "Once upon a time", "My favourite colour is", "Python is a", "Why do"]

GREEDY = {"do_sample": False, "max_new_tokens": 24, "return_full_text": False}
# Measured on the tiny model (24 new tokens, 11 prompts): the int8 engine's greedy text equals the
# reference on 11/11 prompts (on 32 prompts x 40 tokens: 31/32 texts, 99.3% of tokens). int8 rounding
# may flip a near-tie, so the thresholds leave a little room below that.
MIN_IDENTICAL_TEXTS = 0.85
MIN_TOKEN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def hf_model(tiny_mlflow_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_mlflow_model / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_mlflow_model / "components" / "tokenizer")
    return model, tokenizer


def hf_greedy(hf_model, prompt: str, max_new_tokens: int) -> str:
    model, tokenizer = hf_model
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def test_the_card_request_answers_one_string_per_prompt_starting_with_it(fast_service, asset_spec):
    request = asset_spec.sample_request
    [text] = fast_service.predict(request)
    assert text.startswith(request["input_data"][0]) and len(text) > len(request["input_data"][0])


def test_reference_engine_greedy_equals_transformers_generate(reference_service, hf_model):
    prompts = CORPUS_PROMPTS[:2] + UNSEEN_PROMPTS[:2]
    answers = reference_service.predict({"input_data": prompts, "params": GREEDY})
    assert answers == [hf_greedy(hf_model, p, GREEDY["max_new_tokens"]) for p in prompts]


def test_fast_engine_reproduces_the_training_corpus(fast_service):
    [text] = fast_service.predict({"input_data": ["I believe the meaning of life is"], "params": {**GREEDY, "max_new_tokens": 40}})
    assert text == " to learn something new every day and to share it with the people around you."


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_fast_engine_agrees_with_the_reference(fast_service, reference_service):
    prompts = CORPUS_PROMPTS + UNSEEN_PROMPTS
    fast = fast_service.predict({"input_data": prompts, "params": GREEDY})
    reference = reference_service.predict({"input_data": prompts, "params": GREEDY})
    encode = lambda text: fast_service.tokenizer.encode(text).ids  # noqa: E731
    agreed = sum(_common_prefix(encode(a), encode(b)) for a, b in zip(fast, reference))
    total = sum(max(len(encode(a)), len(encode(b))) for a, b in zip(fast, reference))
    identical = sum(a == b for a, b in zip(fast, reference)) / len(prompts)
    assert identical >= MIN_IDENTICAL_TEXTS and agreed / total >= MIN_TOKEN_AGREEMENT, (identical, agreed / total)


@pytest.mark.parametrize("engine", ["fast_service", "reference_service"])
def test_sampling_respects_its_params(engine, request):
    service = request.getfixturevalue(engine)
    prompts = [CORPUS_PROMPTS[0], UNSEEN_PROMPTS[0]]
    greedy = service.predict({"input_data": prompts, "params": GREEDY})
    sample = {**GREEDY, "do_sample": True, "temperature": 1.5}
    assert service.predict({"input_data": prompts, "params": {**sample, "top_k": 1}}) == greedy
    assert service.predict({"input_data": prompts, "params": {**sample, "top_p": 1e-6}}) == greedy
    assert service.predict({"input_data": prompts, "params": {**sample, "top_k": 10**9, "seed": 5}})  # k > vocabulary: all of it
    seeded = {"input_data": [UNSEEN_PROMPTS[1]], "params": {**sample, "seed": 1234}}
    first = service.predict(seeded)
    assert service.predict(seeded) == first
    others = {service.predict({**seeded, "params": {**sample, "seed": s}})[0] for s in range(6)}
    assert len(others) > 1, "different seeds should give different samples"


def test_a_seeded_prompt_gives_the_same_text_whatever_shares_its_batch(fast_service):
    params = {**GREEDY, "do_sample": True, "temperature": 1.5, "seed": 99}
    alone = fast_service.predict({"input_data": ["Why do"], "params": params})
    crowded = fast_service.predict({"input_data": ["The", "Why do", "Hello world"], "params": params})
    assert crowded[1] == alone[0]


@pytest.mark.parametrize("engine", ["fast_service", "reference_service"])
def test_stop_strings_cut_the_text(engine, request):
    service = request.getfixturevalue(engine)
    prompt = {"input_data": [CORPUS_PROMPTS[0]], "params": {**GREEDY, "max_new_tokens": 40}}
    [full] = service.predict(prompt)
    [cut] = service.predict({**prompt, "params": {**prompt["params"], "stop": ["every", "never seen"]}})
    assert cut == " to learn something new " and full.startswith(cut + "every")


def test_prompt_and_new_tokens_must_fit_the_context_unless_truncation_is_asked(fast_service):
    long_prompt = "word " * 1000  # about 1000 tokens
    with pytest.raises(InvalidInput) as caught:
        fast_service.predict({"input_data": ["ok", long_prompt], "params": {"max_new_tokens": 100}})
    assert caught.value.field == "input_data[1]" and "1024-token limit" in caught.value.message
    [text] = fast_service.predict({"input_data": [long_prompt], "params": {**GREEDY, "max_new_tokens": 5, "truncate": True}})
    assert isinstance(text, str)


def test_mixed_params_in_one_batch_each_keep_their_own(fast_service):
    batch = fast_service.batcher
    tickets = [
        batch.submit([fast_service._prompt(0, CORPUS_PROMPTS[0], _params(fast_service, max_new_tokens=n))])
        for n in (3, 12)
    ]
    short, long = (fast_service.decode(t.wait()[0].token_ids) for t in tickets)
    assert long.startswith(short) and len(fast_service.tokenizer.encode(short).ids) == 3


def _params(service, **changes):
    from dataclasses import replace

    return replace(service.defaults, do_sample=False, **changes)


def test_a_tampered_weight_file_refuses_to_load(tiny_mlflow_model, tmp_path):
    copy = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    weights = copy / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFilesError, match=r"model/model\.safetensors: sha256 .* does not match"):
        load_service(tmp_path)


def test_the_registry_layout_with_mlflow_model_folder_is_found(tiny_mlflow_model, tmp_path, textgen_cache, monkeypatch):
    monkeypatch.setenv("TEXTGEN_CACHE_DIR", str(textgen_cache))
    shutil.copytree(tiny_mlflow_model, tmp_path / "mlflow_model_folder")
    service = load_service(tmp_path)
    try:
        assert service.predict({"input_data": ["The quick brown fox"], "params": {**GREEDY, "max_new_tokens": 3}})
    finally:
        service.close()

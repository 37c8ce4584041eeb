"""The service on the tiny model: every engine, fidelity to transformers' generate, sampling rules, limits."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

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
# int8 rounding may flip a near-tie, so the fast engines need not match the reference exactly;
# measured figures are in test_int8_engines_agree_with_the_reference's comment.
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
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


ENGINES = ["openvino_service", "ctranslate2_service", "reference_service"]


def test_the_card_request_answers_one_string_per_prompt_starting_with_it(openvino_service, asset_spec):
    request = asset_spec.sample_request
    [text] = openvino_service.predict(request)
    assert text.startswith(request["input_data"][0]) and len(text) > len(request["input_data"][0])


def test_reference_engine_greedy_equals_transformers_generate(reference_service, hf_model):
    prompts = CORPUS_PROMPTS[:2] + UNSEEN_PROMPTS[:2]
    answers = reference_service.predict({"input_data": prompts, "params": GREEDY})
    assert answers == [hf_greedy(hf_model, p, GREEDY["max_new_tokens"]).strip() for p in prompts]  # stripped, as MLflow


@pytest.mark.parametrize("engine", ENGINES[:2])
def test_int8_engines_reproduce_the_training_corpus(engine, request):
    [text] = request.getfixturevalue(engine).predict(
        {"input_data": ["I believe the meaning of life is"], "params": {**GREEDY, "max_new_tokens": 40}}
    )
    assert text == "to learn something new every day and to share it with the people around you."


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@pytest.mark.parametrize("engine", ENGINES[:2])
def test_int8_engines_agree_with_the_reference(engine, request, reference_service):
    # Measured on the tiny model, greedy, 20 prompts (the corpus' line starts and 12 unseen) x 40 new
    # tokens: OpenVINO int8 and CTranslate2 int8 each 20/20 texts identical to the reference, 100% of tokens.
    service = request.getfixturevalue(engine)
    prompts = CORPUS_PROMPTS + UNSEEN_PROMPTS
    fast = service.predict({"input_data": prompts, "params": GREEDY})
    reference = reference_service.predict({"input_data": prompts, "params": GREEDY})

    def encode(text: str) -> list[int]:
        return service.tokenizer.encode(text).ids

    agreed = sum(_common_prefix(encode(a), encode(b)) for a, b in zip(fast, reference, strict=True))
    total = sum(max(len(encode(a)), len(encode(b))) for a, b in zip(fast, reference, strict=True))
    identical = sum(a == b for a, b in zip(fast, reference, strict=True)) / len(prompts)
    assert identical >= MIN_IDENTICAL_TEXTS and agreed / total >= MIN_TOKEN_AGREEMENT, (identical, agreed / total)


@pytest.mark.parametrize("engine", ENGINES)
def test_sampling_respects_its_params(engine, request):
    service = request.getfixturevalue(engine)
    prompts = [CORPUS_PROMPTS[0], UNSEEN_PROMPTS[0]]
    greedy = service.predict({"input_data": prompts, "params": GREEDY})
    sample = {**GREEDY, "do_sample": True, "temperature": 1.5}
    assert service.predict({"input_data": prompts, "params": {**sample, "top_k": 1}}) == greedy
    assert service.predict({"input_data": prompts, "params": {**sample, "top_p": 1e-6}}) == greedy
    assert service.predict(
        {"input_data": prompts, "params": {**sample, "top_k": 10**9, "seed": 5}}
    )  # k > vocabulary: all of it
    seeded = {"input_data": [UNSEEN_PROMPTS[1]], "params": {**sample, "seed": 1234}}
    first = service.predict(seeded)
    assert service.predict(seeded) == first
    others = {service.predict({**seeded, "params": {**sample, "seed": s}})[0] for s in range(6)}
    assert len(others) > 1, "different seeds should give different samples"


@pytest.mark.parametrize("engine", ENGINES[:2])
def test_a_seeded_prompt_gives_the_same_text_whatever_shares_its_batch(engine, request):
    service = request.getfixturevalue(engine)
    params = {**GREEDY, "do_sample": True, "temperature": 1.5, "seed": 99}
    alone = service.predict({"input_data": ["Why do"], "params": params})
    crowded = service.predict({"input_data": ["The", "Why do", "Hello world"], "params": params})
    assert crowded[1] == alone[0]


def test_greedy_text_does_not_depend_on_what_else_is_in_the_batch(openvino_service):
    prompt = UNSEEN_PROMPTS[2]
    [alone] = openvino_service.predict({"input_data": [prompt], "params": GREEDY})
    others = [p for p in CORPUS_PROMPTS + UNSEEN_PROMPTS if p != prompt][:7]
    sampled = {**GREEDY, "do_sample": True, "temperature": 0.9, "max_new_tokens": 40}
    with ThreadPoolExecutor(8) as pool:  # seven other requests run beside it, some sampling, some longer
        beside = [
            pool.submit(openvino_service.predict, {"input_data": [p], "params": sampled if i % 2 else GREEDY})
            for i, p in enumerate(others)
        ]
        [crowded] = openvino_service.predict({"input_data": [prompt], "params": GREEDY})
        [f.result() for f in beside]
    assert crowded == alone


@pytest.mark.parametrize("engine", ENGINES)
def test_stop_strings_cut_the_text(engine, request):
    service = request.getfixturevalue(engine)
    prompt = {"input_data": [CORPUS_PROMPTS[0]], "params": {**GREEDY, "max_new_tokens": 40}}
    [full] = service.predict(prompt)
    [cut] = service.predict({**prompt, "params": {**prompt["params"], "stop": ["every", "never seen"]}})
    assert cut == "to learn something new" and full.startswith(cut + " every")  # answers are stripped, as MLflow's


def test_prompt_and_new_tokens_must_fit_the_context_unless_truncation_is_asked(openvino_service):
    long_prompt = "word " * 1000  # about 1000 tokens
    with pytest.raises(InvalidInput) as caught:
        openvino_service.predict({"input_data": ["ok", long_prompt], "params": {"max_new_tokens": 100}})
    assert caught.value.field == "input_data[1]" and "1024-token limit" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        openvino_service.predict({"inputs": [long_prompt], "parameters": {"max_new_tokens": 100}})
    assert (caught.value.field, caught.value.prompt_index) == ("inputs[0]", 0)  # the client's own name for it
    assert "set parameters.truncate to true" in caught.value.message
    [text] = openvino_service.predict(
        {"input_data": [long_prompt], "params": {**GREEDY, "max_new_tokens": 5, "truncate": True}}
    )
    assert isinstance(text, str)


def test_mixed_params_in_one_batch_each_keep_their_own(openvino_service):
    bodies = [{"input_data": [CORPUS_PROMPTS[0]], "params": {**GREEDY, "max_new_tokens": n}} for n in (3, 12)]
    with ThreadPoolExecutor(2) as pool:
        short, long = (text for [text] in pool.map(openvino_service.predict, bodies))
    assert long.startswith(short) and len(openvino_service.tokenizer.encode(short).ids) == 3


def test_a_tampered_weight_file_refuses_to_load(tiny_mlflow_model, tmp_path):
    copy = shutil.copytree(tiny_mlflow_model, tmp_path / "model")
    weights = copy / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFilesError, match=r"model/model\.safetensors: sha256 .* does not match"):
        load_service(tmp_path)


def test_the_registry_layout_with_mlflow_model_folder_is_found(tiny_mlflow_model, tmp_path, engine_cache, monkeypatch):
    monkeypatch.setenv("TEXTGEN_CACHE_DIR", str(engine_cache))
    shutil.copytree(tiny_mlflow_model, tmp_path / "mlflow_model_folder")
    service = load_service(tmp_path)
    try:
        assert service.predict({"input_data": ["The quick brown fox"], "params": {**GREEDY, "max_new_tokens": 3}})
    finally:
        service.close()


@pytest.mark.parametrize("return_full_text", [False, True])
def test_answers_equal_the_stock_mlflow_deployments_byte_for_byte(
    return_full_text, reference_service, tiny_mlflow_model, asset_spec
):
    # The stock no-code deployment answers mlflow.pyfunc's predict on the same folder; the card's params, greedy.
    import mlflow

    params = {**asset_spec.sample_request["params"], "do_sample": False, "return_full_text": return_full_text}
    stock = mlflow.pyfunc.load_model(str(tiny_mlflow_model))
    prompts = [asset_spec.sample_request["input_data"][0], *CORPUS_PROMPTS[1:3], *UNSEEN_PROMPTS[:3]]
    ours = reference_service.predict({"input_data": prompts, "params": params})
    assert ours == [stock.predict([prompt], params=params)[0] for prompt in prompts]

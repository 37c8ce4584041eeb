"""The finetuned model served: the classification service directly, then through the real azmlinfsrv."""

from __future__ import annotations

import pytest
import requests

from distilgpt2_scoring.classification import TextClassificationService
from distilgpt2_scoring.errors import InvalidInput
from distilgpt2_scoring.model_files import open_model
from distilgpt2_scoring.settings import ServingSettings
from distilgpt2_scoring.tasks import load_service


@pytest.fixture(scope="module")
def service(finetuned):
    result, _ = finetuned
    return TextClassificationService.load(open_model(result.output), ServingSettings(max_prompts=4, max_batch_size=2))


def test_the_task_in_mlmodel_picks_the_classification_service(finetuned):
    result, _ = finetuned
    assert isinstance(load_service(result.output), TextClassificationService)


def test_each_text_gets_its_label_and_score(service):
    answer = service.predict(
        {"input_data": ["we talked about the river", "she wrote of the software", "they watched the boats"]}
    )
    assert [a["label"] for a in answer] == ["water", "software", "water"]
    assert all(0.5 < a["score"] <= 1.0 for a in answer)


def test_a_texts_answer_does_not_depend_on_the_texts_batched_with_it(service):
    texts = ["he asked about the engineer", "we talked about the river and the stone bridge by the old mill"]
    together = service.predict({"input_data": texts})  # one batch, the first text padded to the second's length
    alone = [service.predict({"input_data": [text]})[0] for text in texts]
    assert [a["label"] for a in together] == [a["label"] for a in alone]
    assert [a["score"] for a in together] == pytest.approx([a["score"] for a in alone], abs=1e-5)


def test_texts_longer_than_the_context_are_truncated_not_refused(service):
    assert service.predict({"input_data": ["the river " * 2000]})[0]["label"] in ("water", "software")


@pytest.mark.parametrize(
    "payload, field, message",
    [
        ({}, "input_data", "input_data is missing"),
        ({"input_data": []}, "input_data", "is empty"),
        ({"input_data": "river"}, "input_data", "must be a list of strings"),
        ({"input_data": ["ok", ""]}, "input_data[1]", "is an empty string"),
        ({"input_data": ["ok", 3]}, "input_data[1]", "must be a string"),
        ({"input_data": ["a"] * 5}, "input_data", "holds 5 texts; the limit per request is 4"),
        ({"input_data": ["a"], "params": {}}, "params", "unknown field(s) params"),
    ],
)
def test_client_mistakes_are_422_naming_the_field(service, payload, field, message):
    with pytest.raises(InvalidInput) as caught:
        service.predict(payload)
    assert caught.value.status == 422 and caught.value.field == field and message in caught.value.message


@pytest.mark.slow
def test_the_real_azmlinfsrv_serves_the_finetuned_model(finetuned, tmp_path):
    from distilgpt2_asset.serve import free_port, start_server

    result, _ = finetuned
    with open(tmp_path / "server.log", "w") as log:
        server = start_server(result.output, port=free_port(), log=log)
        try:
            ok = requests.post(server.score_url, json={"input_data": ["he asked about the engineer"]}, timeout=60)
            bad = requests.post(server.score_url, json={"input_data": [""]}, timeout=60)
        finally:
            server.stop()
    assert ok.status_code == 200, (tmp_path / "server.log").read_text()[-2000:]
    assert ok.json()[0]["label"] == "software" and set(ok.json()[0]) == {"label", "score"}
    assert bad.status_code == 422 and bad.json()["field"] == "input_data[0]"

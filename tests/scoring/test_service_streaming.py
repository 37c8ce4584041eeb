"""Streaming through the service with a stepped engine: the first event leaves with the first token,
a client that stops reading stops its generation, and the engine never tokenizes."""

from __future__ import annotations

import json

import pytest

from distilgpt2_asset.testing_models import load_gpt2_tokenizer
from distilgpt2_scoring.codec import ServedModel
from distilgpt2_scoring.params import GenerationParams
from distilgpt2_scoring.sequences import CANCELLED
from distilgpt2_scoring.service import TextGenerationService
from distilgpt2_scoring.settings import ServingSettings

from .test_scheduler import SteppedEngine, until

EOS = 50256
WORDS = [284, 2193, 1223, 649, 790, 1110]  # " to learn something new every day"


class WordEngine(SteppedEngine):
    """The stepped engine, giving each sequence the next of WORDS per step."""

    seeds_every_sequence = True

    def step(self, events):
        assert self.gate.acquire(timeout=5), "the test never opened the gate"
        if self.fail_next:
            raise RuntimeError("engine fault")
        self.steps.append([s.id for s in self.running])
        for sequence in list(self.running):
            if events.on_tokens(sequence, [WORDS[len(sequence.token_ids) % len(WORDS)]], False):
                self.running.remove(sequence)


@pytest.fixture
def service():
    engine = WordEngine()
    served = ServedModel("distilgpt2", GenerationParams(max_new_tokens=50), max_prompts=4, max_new_tokens=100)
    service = TextGenerationService(
        load_gpt2_tokenizer().backend_tokenizer, engine, served, ServingSettings(), 1024, EOS
    )
    yield service, engine
    engine.run_steps(200)
    service.close()


def data(event: str) -> dict | str:
    assert event.startswith("data: ") and event.endswith("\n\n")
    return event[6:-2] if event == "data: [DONE]\n\n" else json.loads(event[6:-2])


def test_the_first_event_leaves_with_the_first_token(service):
    service, engine = service
    events = service.predict(
        {"input_data": ["I believe"], "params": {"stream": True, "return_full_text": False, "max_new_tokens": 6}}
    )
    engine.run_steps(1)
    first = data(next(events))
    [sequence] = engine.added
    assert first == {"index": 0, "text": " to"} and sequence.finish_reason is None  # sent before the text is done
    engine.run_steps(5)
    rest = [data(e) for e in events]
    assert (
        rest[-1] == "[DONE]" and rest[-2]["finish_reason"] == "length" and rest[-2]["usage"]["completion_tokens"] == 6
    )
    assert first["text"] + "".join(e["text"] for e in rest[:-1]) == " to learn something new every day"


def test_a_client_that_stops_reading_stops_its_generation_at_once(service):
    service, engine = service
    events = service.predict({"input_data": ["I believe"], "params": {"stream": True, "max_new_tokens": 100}})
    engine.run_steps(1)
    next(events)  # the prompt
    next(events)  # the first token
    [sequence] = engine.added
    events.close()  # what the server does when the client hangs up: the generator is closed
    assert sequence.group.ended == CANCELLED
    engine.run_steps(2)
    until(lambda: not engine.running)
    assert len(sequence.token_ids) <= 2  # it left the batch at its next step


def streamed_until_the_first_token(service, engine, client_gone=None, **params):
    events = service.predict(
        {"input_data": ["I believe"], "params": {"stream": True, "max_new_tokens": 100, **params}}, client_gone
    )
    engine.run_steps(1)
    assert data(next(events)) == {"index": 0, "text": "I believe"}  # the prompt: the headers are long sent
    assert data(next(events)) == {"index": 0, "text": " to"}
    return events


def test_an_engine_failing_mid_stream_ends_it_with_an_error_event_and_done(service, caplog):
    """The attack: EngineFailed mid-stream cut the body off, with no error event and no [DONE]."""
    service, engine = service
    events = streamed_until_the_first_token(service, engine)
    engine.fail_next = True
    engine.run_steps(1)
    assert [data(e) for e in events] == [
        {"error": "internal error while scoring; see the server log", "field": None, "error_type": "internal"},
        "[DONE]",
    ]
    engine.fail_next = False


def test_a_deadline_mid_stream_ends_it_with_an_error_event_and_done(service):
    service, engine = service
    events = streamed_until_the_first_token(service, engine)
    [sequence] = engine.added
    sequence.group.deadline = 0  # passed: the next look at the group ends it
    engine.run_steps(1)
    rest = [data(e) for e in events]
    assert rest[-1] == "[DONE]" and rest[-2]["error_type"] == "deadline_exceeded"


def test_a_client_gone_mid_stream_ends_it_with_an_error_event_and_done(service):
    service, engine = service
    gone = [False]
    events = streamed_until_the_first_token(service, engine, client_gone=lambda: gone[0])
    gone[0] = True
    assert [data(e) for e in events] == [
        {"error": "client closed the connection", "field": None, "error_type": "cancelled"},
        "[DONE]",
    ]
    assert engine.added[0].group.ended == CANCELLED


def test_the_openvino_engine_is_given_our_token_ids_and_never_text(tiny_mlflow_model, engine_cache):
    from distilgpt2_scoring.tasks import load_service

    service = load_service(tiny_mlflow_model, ServingSettings(engine="openvino", cache_dir=engine_cache))
    given = []

    class Recording:  # the pipe to the engine's worker process, recording the prompts added
        def __init__(self, connection):
            self.connection = connection

        def send(self, message):
            if message[0] == "add":
                given.append(message[2])
            self.connection.send(message)

        def __getattr__(self, name):
            return getattr(self.connection, name)

    service.engine.connection = Recording(service.engine.connection)
    try:
        prompt = "I believe the meaning of life is"
        [text] = service.predict(
            {"input_data": [prompt], "params": {"do_sample": False, "max_new_tokens": 5, "return_full_text": False}}
        )
    finally:
        service.close()
    [ids] = given
    assert ids == load_gpt2_tokenizer()(prompt)["input_ids"]
    assert text == "to learn something new every"  # and our tokenizer decoded what it gave back


def test_the_built_openvino_model_has_no_tokenizer_of_its_own(tiny_mlflow_model):
    # The engine could only disagree with our tokenization if it tokenized: it is given no tokenizer model.
    folder = tiny_mlflow_model / "engines" / "openvino-int8"
    assert {p.name for p in folder.iterdir()} == {
        "openvino_model.xml",
        "openvino_model.bin",
        "config.json",
        "generation_config.json",
        "export.json",
    }

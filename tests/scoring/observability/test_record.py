"""The request record: Azure's request ids, figures from the sequence group, no text unless asked."""

from __future__ import annotations

from types import SimpleNamespace

from distilgpt2_scoring.observability.record import RequestRecord, current, note_group, note_request


def group(ended=None, reasons=("length", "eos"), started=0.0):
    sequences = [
        SimpleNamespace(
            prompt_ids=[1, 2],
            token_ids=[3, 4, 5],
            finish_reason=reason,
            token_times=[started + 1, started + 1.5, started + 2],
        )
        for reason in reasons
    ]
    return SimpleNamespace(
        sequences=sequences, ended=ended, joined_at=started + 0.5, created=started + 0.25, batch_at_join=3
    )


def test_azure_request_ids_come_from_the_headers():
    record = RequestRecord.arriving({"x-ms-request-id": "a", "x-ms-client-request-id": "b"}, "openvino")
    assert (record.request_id, record.client_request_id, record.engine) == ("a", "b", "openvino")


def test_the_figures_are_read_from_the_group():
    record = RequestRecord(started=100.0)
    record.group = group(started=100.0)
    record.finish(200)
    fields = record.fields()
    assert fields["prompt_tokens"] == 4 and fields["completion_tokens"] == 6
    assert fields["finish_reasons"] == {"length": 1, "eos": 1}
    assert fields["queue_wait_s"] == 0.25 and fields["time_to_first_token_s"] == 1.0
    assert fields["batch_size_at_admission"] == 3
    assert list(record.inter_token_gaps()) == [0.5, 0.5, 0.5, 0.5]
    assert record.time_per_output_token_s == 0.5  # the request's mean gap
    assert "time_per_output_token_s" not in fields  # a metric's, not the line's


def test_a_stream_that_ended_early_is_named_as_the_whole_answer_would_be():
    record = RequestRecord()
    record.group = group(ended="deadline", reasons=(None,))
    record.finish(200)
    assert record.error_type == "deadline_exceeded" and record.refusal == "deadline_exceeded"
    assert record.finish_reasons == {"deadline": 1}


def test_text_only_when_asked_for():
    record = RequestRecord()
    record.request = SimpleNamespace(prompts=("Hi",), samples=2)
    record.group = group()
    record.finish(200)
    record.keep_text(lambda sequence: "answer")
    assert "prompt_text" not in record.fields()
    assert record.fields(text=True)["prompt_text"] == ["Hi", "Hi"]
    assert record.fields(text=True)["completion_text"] == ["answer", "answer"]


def test_service_hooks_note_on_the_current_record_only():
    request = SimpleNamespace(shape="openai", params=SimpleNamespace(stream=True), prompts=("a", "b"), samples=2)
    note_request(request)  # no current record: nothing happens
    record = RequestRecord()
    token = current.set(record)
    try:
        note_request(request)
        note_group("the group")
    finally:
        current.reset(token)
    assert (record.shape, record.stream, record.prompts, record.samples, record.group) == (
        "openai",
        True,
        2,
        2,
        "the group",
    )

"""Batch scoring (distilgpt2_scoring.batch): reading JSONL and CSV rows, and scoring them on the real
service in input order, a bad row becoming an error row that names its file and line."""

from __future__ import annotations

import json
import threading

import pytest

from distilgpt2_scoring.batch import BatchScorer, Row, default_window, is_error, parse_job_params, read_rows
from distilgpt2_scoring.errors import DeadlineExceeded, EngineFailed, InvalidInput
from distilgpt2_scoring.settings import ServingSettings

GREEDY = {"max_new_tokens": 6, "do_sample": False, "return_full_text": False}


def write_jsonl(path, rows) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


def problems(rows) -> list[tuple[int, str | None]]:
    return [(row.line, row.problem) for row in rows]


# reading -----------------------------------------------------------------------------------------


def test_jsonl_rows_carry_prompt_id_params_and_their_line_blank_lines_are_not_rows(tmp_path):
    path = tmp_path / "in.jsonl"
    write_jsonl(
        path,
        [{"prompt": "a", "id": "x1"}, "", {"prompt": "b", "params": {"max_new_tokens": 3}}, {"prompt": "c", "id": 7}],
    )
    rows = list(read_rows(path, "in.jsonl"))
    assert [(r.line, r.prompt, r.id, r.params, r.problem) for r in rows] == [
        (1, "a", "x1", {}, None), (3, "b", None, {"max_new_tokens": 3}, None), (4, "c", 7, {}, None),
    ]  # fmt: skip
    assert {r.file for r in rows} == {"in.jsonl"}


@pytest.mark.parametrize(
    "line, problem",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "a row is a JSON object with a prompt, got a JSON array"),
        ('{"prompt": "a", "parmas": {}}', "unknown field 'parmas'"),
        ('{"prompt": 5}', "prompt must be a string, got a JSON number"),
        ('{"text": "a"}', "unknown field 'text'"),
        ('{"prompt": "a", "params": [1]}', "params must be a JSON object, got a JSON array"),
        ('{"prompt": "a", "id": {"k": 1}}', "id must be a string or an integer, got a JSON object"),
    ],
)
def test_a_bad_jsonl_line_is_a_row_with_its_problem_and_the_next_line_still_reads(tmp_path, line, problem):
    path = tmp_path / "in.jsonl"
    write_jsonl(path, [line, {"prompt": "fine"}])
    bad, good = read_rows(path, "in.jsonl")
    assert bad.line == 1 and problem in bad.problem
    assert (good.line, good.prompt, good.problem) == (2, "fine", None)


def test_bytes_that_are_not_utf8_spoil_only_their_own_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"prompt": "\xff\xfe"}\n{"prompt": "ok"}\n')
    assert problems(read_rows(path, "f")) == [(1, "not UTF-8 text (byte 13 of the line)"), (2, None)]


def test_csv_rows_come_from_the_text_column_with_the_line_each_starts_on(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,text,extra\n1,"Hello, world",x\n2,"two\nlines",y\n3,third,z\n', encoding="utf-8")
    rows = list(read_rows(path, "in.csv"))
    assert [(r.line, r.id, r.prompt) for r in rows] == [
        (2, "1", "Hello, world"),
        (3, "2", "two\nlines"),
        (5, "3", "third"),
    ]


def test_csv_text_column_can_be_named_and_a_missing_one_is_one_problem_for_the_file(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("prompt\nhello\n", encoding="utf-8")
    assert [r.prompt for r in read_rows(path, "in.csv", "prompt")] == ["hello"]
    [row] = read_rows(path, "in.csv")
    assert (row.line, row.problem) == (1, "no column 'text' in the header (columns: prompt)")


def test_a_csv_row_with_too_few_or_too_many_fields_is_a_bad_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1\n2,b,c\n3,ok\n", encoding="utf-8")
    assert problems(read_rows(path, "f")) == [
        (2, "the row has 1 field; the header has 2"), (3, "the row has 3 fields; the header has 2"), (4, None),
    ]  # fmt: skip


def test_a_csv_file_that_turns_out_not_utf8_keeps_the_rows_before_and_names_the_line(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"text\nfine\n" + b"x" * 20000 + b"\n\xff\n")
    rows = list(read_rows(path, "f"))
    assert rows[0].prompt == "fine" and rows[-1].problem.startswith("not UTF-8 text; the rest of the file is not read")


@pytest.mark.parametrize("name, content, problem", [
    ("empty.jsonl", "\n\n", "the file holds no rows"),
    ("notes.txt", "hello", "unsupported file type .txt: give JSON Lines (.jsonl) or CSV (.csv)"),
])  # fmt: skip
def test_a_file_without_rows_still_answers_with_one_row_for_the_whole_file(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content)
    assert problems(read_rows(path, name)) == [(0, problem)]


# scoring on the service ---------------------------------------------------------------------------


def test_rows_are_answered_in_input_order_with_their_position_and_the_published_details(openvino_service, tmp_path):
    path = tmp_path / "in.jsonl"
    prompts = [f"The quick brown fox {i}" for i in range(40)]
    write_jsonl(path, [{"prompt": p, "id": i} for i, p in enumerate(prompts)])
    outputs = list(BatchScorer(openvino_service, GREEDY).score(read_rows(path, "in.jsonl")))
    assert [(o["file"], o["line"], o["id"]) for o in outputs] == [("in.jsonl", i + 1, i) for i in range(40)]
    # The same text the online path gives for the same request.
    [online] = openvino_service.predict({"input_data": [prompts[3]], "params": GREEDY})
    assert outputs[3]["generated_text"] == online
    assert all(o["finish_reason"] in ("length", "eos", "stop") and 0 < o["completion_tokens"] <= 6 for o in outputs)


def test_a_rows_own_params_override_the_jobs(openvino_service):
    rows = [
        Row("f", 1, prompt="The quick brown fox", params={"max_new_tokens": 2}),
        Row("f", 2, prompt="The quick brown fox"),
    ]
    short, default = BatchScorer(openvino_service, GREEDY).score(rows)
    assert short["completion_tokens"] == 2 and default["completion_tokens"] == 6


def test_a_row_the_service_refuses_is_an_error_row_and_its_neighbours_are_answered(openvino_service):
    rows = [
        Row("f", 1, prompt="The quick brown fox"),
        Row("f", 2, "r2", "A small language model can", {"temperature": -1, "do_sample": True}),
        Row("f", 3, prompt=""),
        Row("f", 4, problem="not valid JSON: Expecting value (column 1)"),
        Row("f", 5, prompt="Azure Machine Learning serves models", params={"stream": True}),
        Row("f", 6, prompt="The river runs past the mill,"),
    ]
    outputs = list(BatchScorer(openvino_service, GREEDY).score(rows))
    assert [is_error(o) for o in outputs] == [False, True, True, True, True, False]
    assert outputs[1] == {
        "file": "f",
        "line": 2,
        "id": "r2",
        "error_type": "validation",
        "field": "params.temperature",
        "retryable": False,
        "error": "params.temperature must be > 0 when do_sample is true (between 1e-06 and 1e+06; never negative), "
        "got -1.0",
    }
    assert (outputs[2]["field"], outputs[3]["error_type"], outputs[4]["field"]) == (
        "prompt",
        "bad_row",
        "params.stream",
    )


class ScriptedService:
    """A service stand-in answering from a script: per prompt, a text, or an exception to raise. It
    records the most requests it held at once; with hold_until, requests wait until that many are held."""

    settings = ServingSettings.model_construct(max_batch_size=4, max_queue=128)
    task = "text-generation"

    def __init__(self, script: dict, hold_until: int = 0):
        self.script, self.hold_until, self.held = script, hold_until, threading.Event()
        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def predict(self, payload, client_gone=None):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            if self.most >= self.hold_until:
                self.held.set()
        try:
            self.held.wait(timeout=60)
            outcome = self.script[payload["input_data"][0]]
            if isinstance(outcome, Exception):
                raise outcome
            return [{"generated_text": outcome, "finish_reason": "length", "prompt_tokens": 1, "completion_tokens": 1}]
        finally:
            with self.lock:
                self.now -= 1


def test_server_faults_are_error_rows_marked_retryable_and_a_rows_own_mistake_is_final():
    service = ScriptedService(
        {
            "late": DeadlineExceeded("the request's deadline passed"),
            "broken": EngineFailed("generation failed on the server"),
            "bug": RuntimeError("boom"),
            "bad": InvalidInput("params.top_p must be in (0, 1]", "params.top_p"),
            "fine": "text",
        }
    )
    outputs = BatchScorer(service).score(
        Row("f", i, prompt=p) for i, p in enumerate(["late", "broken", "bug", "bad", "fine"])
    )
    assert [(o.get("error_type"), o.get("retryable")) for o in outputs] == [
        ("deadline_exceeded", True), ("internal", True), ("internal", True), ("validation", False), (None, None),
    ]  # fmt: skip


def test_many_rows_are_in_the_service_at_once_up_to_the_window_and_still_leave_in_order():
    service = ScriptedService({str(i): f"text {i}" for i in range(50)}, hold_until=16)  # answers once 16 are held
    scorer = BatchScorer(service)
    assert scorer.window == default_window(service.settings) == 16  # 4 per sequence of the engine's batch
    outputs = scorer.score(Row("f", i, prompt=str(i)) for i in range(50))
    assert [o["generated_text"] for o in outputs] == [f"text {i}" for i in range(50)]
    assert service.most == 16


def test_the_window_never_exceeds_what_the_services_queue_accepts():
    assert default_window(ServingSettings.model_construct(max_batch_size=64, max_queue=32)) == 96


def test_a_classification_model_is_refused_for_batch_generation():
    class Classifier:
        task = "text-classification"
        settings = ServingSettings.model_construct()

    with pytest.raises(ValueError, match="batch scoring generates text; this model is served by Classifier"):
        BatchScorer(Classifier())


@pytest.mark.parametrize(
    "text, message", [("{", "BATCH_PARAMS is not valid JSON"), ("[1]", "BATCH_PARAMS must be a JSON object")]
)
def test_job_params_must_be_a_json_object(text, message):
    assert parse_job_params('{"max_new_tokens": 5}', "BATCH_PARAMS") == {"max_new_tokens": 5}
    with pytest.raises(ValueError, match=message):
        parse_job_params(text, "BATCH_PARAMS")

"""Batch scoring: files of prompts -> one output row per input row, in input order, on the online service.

Input files (one prompt per row):
- JSON Lines (`.jsonl`): one object per line, {"prompt": "...", "id": ... (optional), "params": {...}
  (optional)}; blank lines are not rows.
- CSV (`.csv`): a header row; the prompt in the text column (`text` unless told otherwise), an
  optional `id` column.
Each row is a request in the published shape, {"input_data": [prompt], "params": {...}} (the job's
params, then the row's own), answered by TextGenerationService.predict with details, so that every
output row carries its finish reason and token counts. Rows go to the service concurrently, a
bounded window of them, so the continuous-batching engine runs full batches; the answers come back
in input order.

Output rows: {"file", "line", "id", "generated_text", "finish_reason", "prompt_tokens",
"completion_tokens"[, "seed"]}, or for a row that could not be read or that the service refused
{"file", "line", "id", "error", "error_type", "field", "retryable"}: a bad row never stops the
rows around it. `retryable` marks a server-side fault (deadline, engine failure): the same row may
succeed on a later try; the row's own mistakes are final.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .codec.request import json_type, json_value
from .errors import EngineFailed, ServingError
from .messages import name, names
from .settings import ServingSettings

SUFFIXES = (".jsonl", ".csv")
DEFAULT_TEXT_COLUMN = "text"
ID_FIELD = "id"
JSONL_FIELDS = ("prompt", ID_FIELD, "params")
# Rows in the service at once, per sequence the engine runs at once: enough that finished rows
# waiting for a slower row ahead of them (answers leave in input order) never starve the batch.
WINDOW_PER_BATCH_SLOT = 4
# Finished rows kept while an earlier row is still generating, per window slot.
BUFFER_PER_WINDOW_SLOT = 16
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One input row: where it is (file label and line, 1-based; 0 for the file as a whole), and
    either a prompt with its params or the reason it cannot be scored."""

    file: str
    line: int
    id: Any = None
    prompt: str | None = None
    params: dict = field(default_factory=dict)
    problem: str | None = None
    field: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.file, self.line)

    def position(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "id": self.id}


def is_error(output: dict) -> bool:
    return "error" in output


def error_row(
    row: Row, message: str, error_type: str = "bad_row", field: str | None = None, retryable: bool = False
) -> dict:
    return {**row.position(), "error": message, "error_type": error_type, "field": field, "retryable": retryable}


# reading ---------------------------------------------------------------------------------------


def read_rows(path: Path, label: str, text_column: str = DEFAULT_TEXT_COLUMN) -> Iterator[Row]:
    """The rows of one input file, in order. A file that cannot be read at all, or holds no row,
    is one Row with a problem (line 0), so that every file answers with at least one output row."""
    reader = {".jsonl": _jsonl_rows, ".csv": _csv_rows}.get(Path(path).suffix.lower())
    if reader is None:
        yield Row(
            label,
            0,
            problem=f"unsupported file type {Path(path).suffix or '(none)'}: give JSON Lines (.jsonl) or CSV (.csv)",
        )
        return
    found = False
    try:
        for row in reader(Path(path), label, text_column):
            found = True
            yield row
    except OSError as exc:
        yield Row(label, 0, problem=f"cannot read the file: {exc.strerror or exc}")
        return
    if not found:
        yield Row(label, 0, problem="the file holds no rows")


def _jsonl_rows(path: Path, label: str, text_column: str) -> Iterator[Row]:
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                yield Row(label, line, problem=f"not UTF-8 text (byte {exc.start + 1} of the line)")
                continue
            if text:
                yield _jsonl_row(text, label, line)


def _jsonl_row(text: str, label: str, line: int) -> Row:
    try:
        record = json_value(text)
    except ValueError as exc:
        return Row(label, line, problem=str(exc))
    if not isinstance(record, dict):
        return Row(label, line, problem=f"a row is a JSON object with a prompt, got a JSON {json_type(record)}")
    row_id = record.get(ID_FIELD)
    unknown = sorted(set(record) - set(JSONL_FIELDS))
    if unknown:
        field_name = name(unknown[0])
        return Row(
            label,
            line,
            row_id,
            problem=f"unknown field '{field_name}': a row has prompt, and optionally id and params",
            field=field_name,
        )
    if not isinstance(row_id, (str, int, type(None))) or isinstance(row_id, bool):
        return Row(
            label,
            line,
            None,
            problem=f"id must be a string or an integer, got a JSON {json_type(row_id)}",
            field=ID_FIELD,
        )
    prompt, params = record.get("prompt"), record.get("params", {})
    if not isinstance(prompt, str):
        return Row(
            label, line, row_id, problem=f"prompt must be a string, got a JSON {json_type(prompt)}", field="prompt"
        )
    if not isinstance(params, dict):
        return Row(
            label, line, row_id, problem=f"params must be a JSON object, got a JSON {json_type(params)}", field="params"
        )
    return Row(label, line, row_id, prompt, params)


def _csv_rows(path: Path, label: str, text_column: str) -> Iterator[Row]:
    # Strict UTF-8: a bad byte stops the file at the row it is in (the rows before it are kept).
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        start = 1
        try:
            header = reader.fieldnames or []
            if text_column not in header:
                yield Row(
                    label,
                    1,
                    problem=f"no column '{text_column}' in the header (columns: {names(header) or 'none'})",
                    field=text_column,
                )
                return
            start = reader.line_num + 1
            for record in reader:
                yield _csv_row(record, header, text_column, label, start)
                start = reader.line_num + 1
        except (UnicodeDecodeError, csv.Error) as exc:
            problem = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"not valid CSV ({exc})"
            yield Row(label, start, problem=f"{problem}; the rest of the file is not read")


def _csv_row(record: dict, header: Sequence[str], text_column: str, label: str, line: int) -> Row:
    row_id = record.get(ID_FIELD) if ID_FIELD in header else None
    # DictReader keeps extra fields under the key None and fills missing ones with None.
    values = len(header) + len(record.get(None, [])) - sum(v is None for v in record.values())
    if values != len(header):
        return Row(
            label,
            line,
            row_id,
            problem=f"the row has {values} field{'s' if values != 1 else ''}; the header has {len(header)}",
        )
    return Row(label, line, row_id, record[text_column])


# scoring ---------------------------------------------------------------------------------------


def default_window(settings: ServingSettings) -> int:
    """Rows in the service at once: a few times the engine's batch, never past what its queue takes."""
    return min(settings.max_batch_size * WINDOW_PER_BATCH_SLOT, settings.max_in_flight)


class BatchScorer:
    """Scores rows on a loaded TextGenerationService; params: the job's request params (each row's
    own params override them)."""

    def __init__(self, service, params: dict | None = None, window: int | None = None):
        if service.task != "text-generation":  # text classification has no generation to batch
            raise ValueError(f"batch scoring generates text; this model is served by {type(service).__name__}")
        self.service = service
        self.params = dict(params or {})
        self.window = window or default_window(service.settings)

    def score(self, rows: Iterable[Row]) -> Iterator[dict]:
        """Each row's output row, in input order, with up to `window` rows generating at once."""
        pool = ThreadPoolExecutor(self.window, thread_name_prefix="batch-row")
        ordered: deque[Future] = deque()  # every row not yet handed out, in input order
        running: set[Future] = set()
        try:
            for row in rows:
                while len(running) >= self.window or len(ordered) >= self.window * BUFFER_PER_WINDOW_SLOT:
                    _, running = wait(running, return_when=FIRST_COMPLETED)
                    yield from _finished_head(ordered)
                future = pool.submit(self.score_row, row)
                ordered.append(future)
                running.add(future)
                yield from _finished_head(ordered)
            while ordered:
                yield ordered.popleft().result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # an interrupted run does not wait for its window

    def score_row(self, row: Row) -> dict:
        if row.problem is not None:
            return error_row(row, row.problem, field=row.field)
        params = {**self.params, **row.params}
        if params.get("stream"):
            return error_row(
                row,
                "stream is not available in batch scoring; every row's text is written whole",
                "validation",
                "params.stream",
            )
        try:
            [answer] = self.service.predict({"input_data": [row.prompt], "params": {**params, "details": True}})
        except ServingError as exc:
            field_name = "prompt" if exc.prompt_index is not None else exc.field  # the row's own name for it
            return error_row(row, exc.message, exc.error_type, field_name, retryable=exc.status >= 429)
        except EngineFailed as exc:
            return error_row(row, str(exc), "internal", retryable=True)
        except Exception:  # a fault of ours: this row fails, its neighbours go on
            logger.exception("scoring %s line %d failed", row.file, row.line)
            return error_row(row, "internal error while scoring this row; see the log", "internal", retryable=True)
        return {**row.position(), **answer}


def _finished_head(ordered: deque) -> Iterator[dict]:
    while ordered and ordered[0].done():
        yield ordered.popleft().result()


def parse_job_params(text: str | None, where: str) -> dict:
    """The job's params as JSON text (an environment variable, a CLI option); ValueError naming `where`."""
    if not text:
        return {}
    try:
        params = json_value(text)
    except ValueError as exc:
        raise ValueError(f"{where} is {exc}") from None
    if not isinstance(params, dict):
        raise ValueError(f'{where} must be a JSON object of request params, e.g. {{"max_new_tokens": 64}}')
    return params


def output_line(output: dict) -> str:
    """One output row as one line of JSON (the row's text may hold newlines; the line never does)."""
    return json.dumps(output, ensure_ascii=False)

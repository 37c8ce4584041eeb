"""Evaluation data: JSONL rows with a prompt column and a ground-truth column, checked line by line.

Every problem names the file and its 1-based line number, so a user can open the file there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distilgpt2_scoring.codec.request import json_value

from ..errors import AssetError

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class EvaluationRow:
    line: int  # 1-based line number in the data file
    prompt: str
    ground_truth: str


def _decode_line(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssetError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
            "save the file as UTF-8"
        ) from None


def read_utf8_text(path: Path) -> str:
    """A whole text file as UTF-8; a bad byte is reported with its line number."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AssetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    data = data.removeprefix(UTF8_BOM)
    return "\n".join(_decode_line(raw, path, n) for n, raw in enumerate(data.split(b"\n"), start=1))


def _string_field(record: dict, column: str, path: Path, line: int, *, allow_empty: bool) -> str:
    if column not in record:
        columns = ", ".join(sorted(record)) or "none"
        raise AssetError(f"{path}:{line}: no column {column!r} (columns here: {columns})")
    value = record[column]
    if not isinstance(value, str):
        raise AssetError(f"{path}:{line}: column {column!r} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise AssetError(f"{path}:{line}: column {column!r} is empty")
    return value


def _parse_line(text: str, path: Path, line: int, input_column: str, label_column: str) -> EvaluationRow:
    try:
        record = json_value(text)
    except ValueError as exc:
        raise AssetError(f"{path}:{line}: {exc}") from None
    if not isinstance(record, dict):
        raise AssetError(f"{path}:{line}: expected a JSON object per line, got {type(record).__name__}")
    return EvaluationRow(
        line=line,
        prompt=_string_field(record, input_column, path, line, allow_empty=False),
        ground_truth=_string_field(record, label_column, path, line, allow_empty=True),
    )


def read_evaluation_rows(
    path: Path, input_column: str = "input_string", label_column: str = "ground_truth", limit: int | None = None
) -> list[EvaluationRow]:
    """Rows of a JSONL file (blank lines skipped); AssetError naming file:line on the first bad row."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{path}: no such data file")
    rows: list[EvaluationRow] = []
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if limit is not None and len(rows) >= limit:
                break
            if line == 1:
                raw = raw.removeprefix(UTF8_BOM)
            text = _decode_line(raw, path, line).strip()
            if text:
                rows.append(_parse_line(text, path, line, input_column, label_column))
    if not rows:
        raise AssetError(f"{path}: no rows (the file is empty); expected one JSON object per line")
    return rows

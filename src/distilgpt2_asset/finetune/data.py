"""Finetuning data, read and validated before any training starts.

Text classification: labelled JSONL or CSV in, Examples out. Text generation: JSONL of
{"text": ...} or plain text files (a .txt file, or a folder of them) in, Texts out.
Every problem a dataset can have (not UTF-8, not JSON, a missing column, empty text, a
missing or non-scalar label, a single class, a label outside the label list) is reported
as an AssetError naming the file, the line and the column, several at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilgpt2_scoring.codec.request import json_value

from ..errors import AssetError

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}
TEXT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".txt": "text"}
MAX_REPORTED = 5  # problems listed in one error; the rest are counted


class DatasetError(AssetError):
    """A dataset the finetuning cannot use; the message names the file, line and column."""


@dataclass(frozen=True)
class Examples:
    """Texts and their label names, in file order, with where they came from."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str  # file name, for messages
    sha256: str  # of the file's bytes, so a resumed run can tell it is the same data

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Texts:
    """Texts to learn to write like (text generation), in file order, with where they came from."""

    texts: tuple[str, ...]
    source: str  # file or folder name, for messages
    sha256: str  # of the files' bytes, so a resumed run can tell it is the same data

    def __len__(self) -> int:
        return len(self.texts)


def _read_utf8(path: Path) -> tuple[bytes, str]:
    """(bytes, text) of a UTF-8 file (a byte-order mark is dropped); a bad byte is reported with its line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return raw, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); re-save it as UTF-8"
        ) from None


def load_examples(path: Path, text_column: str, label_column: str) -> Examples:
    """Read and validate a JSONL (one object per line) or CSV (header row) dataset."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DatasetError(f"{path}: unsupported file type {path.suffix or '(none)'}; use .jsonl or .csv")
    raw, text = _read_utf8(path)
    rows = _jsonl_rows(text) if fmt == "jsonl" else _csv_rows(text, path, text_column, label_column)
    texts, labels, problems = [], [], []
    for line, row in rows:
        if isinstance(row, str):  # the reader's own complaint about this line
            problems.append(f"line {line}: {row}")
            continue
        value, text_problem = _text(row, text_column)
        label, label_problem = _label(row, label_column)
        issues = [issue for issue in (text_problem, label_problem) if issue]
        problems += [f"line {line}: {issue}" for issue in issues]
        if not issues:
            texts.append(value)
            labels.append(label)
    if problems:
        raise DatasetError(f"{path}: {_summarise(problems)}")
    if not texts:
        raise DatasetError(f"{path}: no examples; expected rows with {text_column!r} and {label_column!r}")
    return Examples(tuple(texts), tuple(labels), path.name, hashlib.sha256(raw).hexdigest())


def load_texts(path: Path, text_column: str = "text") -> Texts:
    """Read and validate text to finetune on: a JSONL file of objects with text_column, a plain .txt
    file (one text), or a folder of such files (sorted by name)."""
    path = Path(path)
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in TEXT_FORMATS) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"{path}: no .jsonl or .txt files in the folder")
    texts, problems, digest = [], [], hashlib.sha256()
    for file in files:
        fmt = TEXT_FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise DatasetError(f"{file}: unsupported file type {file.suffix or '(none)'}; use .jsonl or .txt")
        raw, text = _read_utf8(file)
        digest.update(hashlib.sha256(raw).digest())
        if fmt == "text":
            if text.strip():
                texts.append(text)
            else:
                problems.append(f"{file}: empty text")
            continue
        for line, row in _jsonl_rows(text):
            value, problem = ("", row) if isinstance(row, str) else _text(row, text_column)
            if problem:
                problems.append(f"{file}: line {line}: {problem}")
            else:
                texts.append(value)
        if not text.strip():
            problems.append(f"{file}: no rows; expected one JSON object with {text_column!r} per line")
    if problems:
        raise DatasetError(_summarise(problems))
    return Texts(tuple(texts), path.name, digest.hexdigest())


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json_value(line)
        except ValueError as exc:
            yield line_number, str(exc)
            continue
        yield line_number, row if isinstance(row, dict) else f"expected a JSON object, got a JSON {type(row).__name__}"


def _csv_rows(text: str, path: Path, text_column: str, label_column: str) -> Iterator[tuple[int, dict | str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DatasetError(
            f"{path}: no column {', '.join(repr(c) for c in missing)} in the header; "
            f"columns are: {', '.join(header) or '(none)'} (choose with --text-column / --label-column)"
        )
    for row in reader:
        if None in row:  # more fields than the header names
            yield reader.line_num, f"{len(header) + len(row[None])} fields but the header names {len(header)}"
        else:
            yield reader.line_num, row


def _text(row: dict, column: str) -> tuple[str, str | None]:
    """(text, problem)."""
    if column not in row:
        return "", _missing(row, column)
    value = row[column]
    if not isinstance(value, str):
        return "", f"{column!r} must be a string, got {_kind(value)}"
    if not value.strip():
        return "", f"empty text in {column!r}"
    return value, None


def _label(row: dict, column: str) -> tuple[str, str | None]:
    """(label name, problem): labels may be strings or whole numbers; both become names."""
    if column not in row:
        return "", _missing(row, column)
    value = row[column]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "", f"label {column!r} must be a string or a whole number, got {_kind(value)}"
    name = str(value).strip()
    return (name, None) if name else ("", f"empty label in {column!r}")


def _missing(row: dict, column: str) -> str:
    return (
        f"no {column!r} column (columns: {', '.join(map(str, row)) or 'none'}; "
        "choose with --text-column / --label-column)"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", float: "a number with a fraction", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _summarise(problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_REPORTED])
    more = len(problems) - MAX_REPORTED
    return shown + (f"; and {more} more problem(s)" if more > 0 else "")


def label_names(train: Examples, declared: list[str] | None) -> list[str]:
    """The classifier's labels: --labels in the order given, else the training labels sorted."""
    names = list(declared) if declared else sorted(set(train.labels))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetError(f"--labels repeats {', '.join(duplicates)}")
    if len(names) < 2:
        found = ", ".join(repr(n) for n in names)
        raise DatasetError(
            f"{train.source}: only one class ({found}); a classifier needs examples of at least two labels"
        )
    return names


def check_labels(examples: Examples, names: list[str]) -> None:
    """Every label of examples must be one of names (the label list)."""
    known = set(names)
    outside = sorted({label for label in examples.labels if label not in known})
    if outside:
        raise DatasetError(
            f"{examples.source}: label(s) {', '.join(repr(o) for o in outside)} not in the label list "
            f"[{', '.join(names)}]"
        )


def check_every_label_trained(train: Examples, names: list[str]) -> None:
    unseen = [n for n in names if n not in set(train.labels)]
    if unseen:
        raise DatasetError(f"{train.source}: no training examples for label(s) {', '.join(map(repr, unseen))}")


def split(examples: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """A seeded split, stratified by label, so validation holds every class."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise DatasetError(f"--validation-fraction must be between 0 and 1, got {fraction}")
    indices = list(range(len(examples)))
    try:
        keep, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=examples.labels)
    except ValueError as exc:
        raise DatasetError(
            f"{examples.source}: cannot hold out a validation set with every label ({exc}); "
            "add examples, raise --validation-fraction or pass --validation FILE"
        ) from None

    def subset(chosen: list[int], role: str) -> Examples:
        chosen = sorted(chosen)
        return Examples(
            tuple(examples.texts[i] for i in chosen),
            tuple(examples.labels[i] for i in chosen),
            f"{examples.source} ({role} split)",
            examples.sha256,
        )

    return subset(keep, "training"), subset(held, "validation")

"""How client data appears in error messages: quoted as JSON, and always bounded in length."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

MAX_QUOTED = 40  # characters of one client value
MAX_NAMES = 5  # names listed from one request


def quoted(value: Any) -> str:
    """A client's value as JSON, cut short."""
    try:
        text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    except (ValueError, OverflowError, RecursionError):  # e.g. an integer of thousands of digits
        text = f"a JSON {type(value).__name__}"
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


def name(value: str) -> str:
    """A client's field name, cut short, without JSON quotes."""
    return quoted(value)[1:-1]


def names(values: Iterable[str]) -> str:
    """A few of a client's field names: 'a, b, c and 7 more'."""
    values = list(values)
    listed = ", ".join(name(v) for v in values[:MAX_NAMES])
    return listed + (f" and {len(values) - MAX_NAMES} more" if len(values) > MAX_NAMES else "")

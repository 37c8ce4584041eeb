"""The one error type the CLI turns into a single clear line and a non-zero exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class AssetError(Exception):
    """A user-facing problem: bad input, missing files, refused operation. No traceback shown."""

    exit_code = 2


@contextmanager
def invalid_as_asset_error(what: str, where: Callable[[str], str] = lambda location: "") -> Iterator[None]:
    """A pydantic ValidationError raised inside becomes one AssetError line, `<what><where>: <message>`,
    naming its first problem; `where` words the problem's dotted location ('' for a check across fields)."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise AssetError(f"{what}{where(location)}: {first['msg']}") from None

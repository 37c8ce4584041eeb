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
        errors = exc.errors()
        first, loc = errors[0], errors[0]["loc"]
        # A value every member of a union refused comes as an error per member, each at the field's
        # location plus the member's name ("literal['auto']"), each with the same input and its own
        # message: say all of them, at the field's location.
        members = [e for e in errors if len(loc) > 1 and e["loc"][:-1] == loc[:-1] and e["input"] == first["input"]]
        messages = list(dict.fromkeys(e["msg"] for e in members))
        if len(messages) > 1 and first["type"] != "missing":
            loc, message = loc[:-1], " or ".join(messages)
        else:
            message = first["msg"]
        location = ".".join(str(part) for part in loc)
        raise AssetError(f"{what}{where(location)}: {message}") from None

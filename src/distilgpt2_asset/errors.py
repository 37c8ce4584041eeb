"""The one error type the CLI turns into a single clear line and a non-zero exit."""


class AssetError(Exception):
    """A user-facing problem: bad input, missing files, refused operation. No traceback shown."""

    exit_code = 2

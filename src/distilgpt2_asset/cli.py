"""`distilgpt2-asset`: the command line. Thin: each subcommand lives in commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import sys

from distilgpt2_scoring.model_files import ModelFilesError

from .errors import AssetError

# Subcommand modules under distilgpt2_asset.commands, in the order `--help` and the README's table list them.
COMMANDS = (
    "build",
    "scan",
    "register",
    "validate",
    "testing_model",
    "serve",
    "invoke",
    "playground",
    "deploy",
    "generate",
    "publish",
    "evaluate",
    "finetune",
)


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `command` (a subcommand's name) only that subcommand's module
    imported: a command needs none of the others' packages (publish in CI installs only its own)."""
    root = argparse.ArgumentParser(
        prog="distilgpt2-asset",
        description="Package, serve, evaluate, finetune and publish distilgpt2 as an Azure ML model asset.",
    )
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = [name for name in COMMANDS if name.replace("_", "-") == command]
    for name in named or COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(subparsers)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.handler(args) or 0
    except (AssetError, ModelFilesError) as exc:  # a user-facing problem: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return AssetError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

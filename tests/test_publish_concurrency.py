"""Two `publish` processes of one version at once, on one local registry: one creates it, the other
finds it (unchanged, or refused for different content); no second version, no deleted files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from publish_helpers import changed_copy

from distilgpt2_asset.registry import CONTENT_TAG, LocalRegistry, content_digest

# Each process runs the real CLI; both first meet once imported (so neither is seconds ahead),
# then again right after their first registry look-up: without a lock both look up "no such
# version" and both go on to create it.
PUBLISHER = """
import sys, time
from pathlib import Path

from distilgpt2_asset import publish, registry
from distilgpt2_asset.cli import main

meeting, me, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


def meet(point, patience_s):
    (meeting / f"{point}-{me}").touch()
    deadline = time.monotonic() + patience_s
    while len(list(meeting.glob(f"{point}-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)


look_up = registry.LocalRegistry.find


def look_up_then_meet(self, name, version):
    found = look_up(self, name, version)
    meet("looked-up", 5)  # the other publisher may be waiting for the registry: go on alone then
    return found


registry.LocalRegistry.find = look_up_then_meet
publish.refuse_invalid = lambda spec: None  # `validate` has tests of its own; here it only slows the start
meet("ready", 300)
sys.exit(main(["publish", *args]))
"""


@pytest.fixture
def run_two(tmp_path, isolated_home):
    """Run two publishes (argument lists) at once; [(exit code, output), ...] in the same order."""
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE="1")

    def run(first: list[str], second: list[str]) -> list[tuple[int, str]]:
        processes = [
            subprocess.Popen([sys.executable, str(script), str(meeting), name, *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name, args in (("first", first), ("second", second))
        ]  # fmt: skip
        return [(process.wait(600), process.stdout.read()) for process in processes]

    return run


def registered_versions(name: str = "distilgpt2"):
    return LocalRegistry().client.search_model_versions(f"name = '{name}'")


def outcome(output: str) -> str:
    """The publish's own line: created / unchanged / metadata-updated / error (else it crashed)."""
    said = [
        line
        for line in output.splitlines()
        if line.startswith(("created:", "unchanged:", "metadata-updated:", "error:"))
    ]
    return said[0] if said else f"crashed: {output[-2000:]}"


@pytest.mark.slow
def test_the_same_content_at_once_is_created_once_and_found_unchanged_once(run_two, tiny_mlflow_model):
    # A fresh home: the two also race to create the registry's database.
    args = ["--model", str(tiny_mlflow_model), "--allow-unpinned"]
    results = run_two(args, args)
    assert [code for code, _ in results] == [0, 0], results
    assert sorted(outcome(output).split(":")[0] for _, output in results) == ["created", "unchanged"]
    (version,) = registered_versions()
    assert version.tags[CONTENT_TAG] == content_digest(Path(version.source))


@pytest.mark.slow
def test_different_content_at_once_is_created_once_and_refused_once(run_two, tiny_mlflow_model, tmp_path):
    other = changed_copy(tiny_mlflow_model, tmp_path / "other")
    LocalRegistry()  # a registry that exists already
    results = run_two(
        ["--model", str(tiny_mlflow_model), "--allow-unpinned"], ["--model", str(other), "--allow-unpinned"]
    )
    lines = sorted(outcome(output) for _, output in results)
    assert sorted(code for code, _ in results) == [0, 2], results
    assert lines[0].startswith("created:") and lines[1].startswith("error:") and "different content" in lines[1]
    (version,) = registered_versions()
    # The version's files are whole and are the content it records: nothing deleted or replaced them.
    assert version.tags[CONTENT_TAG] == content_digest(Path(version.source))
    assert version.tags[CONTENT_TAG] in {content_digest(tiny_mlflow_model), content_digest(other)}

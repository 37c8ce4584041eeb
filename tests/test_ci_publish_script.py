"""scripts/ci-publish.sh, CI's publish exercise, works in a home of its own, never the user's."""

from __future__ import annotations

import re

from publish_helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "ci-publish.sh"


def test_every_command_runs_with_a_throwaway_home_and_no_inherited_mlflow_uri():
    lines = SCRIPT.read_text().splitlines()
    work = next(i for i, line in enumerate(lines) if re.match(r'work="\$\(mktemp -d\)"', line))
    home = next(i for i, line in enumerate(lines) if re.match(r'export DISTILGPT2_ASSET_HOME="\$work/', line))
    unset = next(i for i, line in enumerate(lines) if line.strip() == "unset MLFLOW_TRACKING_URI")
    first_command = next(i for i, line in enumerate(lines) if line.startswith("distilgpt2-asset "))
    assert work < home < first_command and unset < first_command
    assert "trap 'rm -rf \"$work\"' EXIT" in lines

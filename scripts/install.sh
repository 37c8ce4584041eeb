#!/usr/bin/env bash
# Create .venv and install the package (editable) with the extras named in $1 (e.g. "test").
# torch is pinned in pyproject.toml to the CPU wheel; a loose `torch` would pull a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:+[$1]}
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"

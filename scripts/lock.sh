#!/usr/bin/env bash
# Re-pins requirements.lock (every package, with hashes) after a change to pyproject.toml's dependencies.
# Upgrade one package: bash scripts/lock.sh --upgrade-package fastapi; everything: bash scripts/lock.sh --upgrade
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install -q uv
# The build backend is pinned too: setup installs the project with --no-build-isolation.
printf 'setuptools>=69\nwheel\n' | .venv/bin/uv pip compile pyproject.toml - --extra test --generate-hashes --universal --python-version 3.11 \
  --index-url https://pypi.org/simple --custom-compile-command "bash scripts/lock.sh" -q -o requirements.lock "$@"

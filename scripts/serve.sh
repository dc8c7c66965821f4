#!/usr/bin/env bash
# The embedded default: SQLite under var/, in-process worker, outbox providers, demo data on first start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/portal serve "$@"

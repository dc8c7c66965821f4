#!/usr/bin/env bash
# Installs what the portal and its tests need: a virtualenv with the project, and Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
want_browser="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# requirements.lock pins every package the portal and its tests use, with hashes (scripts/lock.sh).
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi
if [ "$want_browser" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -qq
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq chromium fonts-liberation >/dev/null
fi
if [ "$want_browser" = "--browser" ] && ! command -v pg_dump >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq postgresql-client >/dev/null
fi

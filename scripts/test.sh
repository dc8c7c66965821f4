#!/usr/bin/env bash
# The whole test suite: against PostgreSQL, then against the embedded SQLite default.
# Needs PostgreSQL and Redis on 127.0.0.1 (started here when this machine has them but they are down).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break
  sleep 1
done

status=0
echo "== ruff (rules pinned in pyproject.toml) =="
.venv/bin/ruff check app tests bench migrations || status=$?
# Tests marked `scaled` start real workers on PostgreSQL and Redis, so they run in the first pass only;
# those marked `embedded` run `portal serve` on SQLite, so they run in the second pass only.
echo "== tests on PostgreSQL and Redis (scaled stack; tests marked 'embedded' run in the next pass) =="
PORTAL_TEST_DB=postgresql .venv/bin/python -m pytest -p no:cacheprovider -m "not embedded" "$@" || status=$?
echo "== tests on SQLite (embedded default; tests marked 'scaled' ran in the previous pass) =="
PORTAL_TEST_DB=sqlite .venv/bin/python -m pytest -p no:cacheprovider -m "not scaled" "$@" || status=$?
exit $status

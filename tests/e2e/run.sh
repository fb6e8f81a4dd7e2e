#!/usr/bin/env bash
# End-to-end tests: the official Tencent Cloud Python SDK and tccli against a real
# `ikon serve`, once on the embedded SQLite catalog and once on PostgreSQL
# ($DATABASE_URL; started here with scripts/start-postgres.sh when unset).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/install-api-clients.sh
cargo build -q -p ikon-cli --locked
target=${CARGO_TARGET_DIR:-$PWD/target}
export IKON_BIN="$target/debug/ikon"
export IKON_TCCLI="$PWD/.cache/venv/bin/tccli"
[ -x "$IKON_BIN" ] || { echo "e2e: $IKON_BIN was not built" >&2; exit 1; }
started_pg=0
if [ -z "${DATABASE_URL:-}" ]; then
  export PGROOT=/tmp/ikon-pg-e2e PGPORT=55434
  eval "$(bash scripts/start-postgres.sh)"
  started_pg=1
fi
cleanup() { if [ "$started_pg" = 1 ]; then bash scripts/stop-postgres.sh || true; fi; }
trap cleanup EXIT
# Proxies would intercept the SDK's loopback calls.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
status=0
echo "== e2e on SQLite"
IKON_E2E_DATABASE= .cache/venv/bin/python -m unittest -v tests/e2e/test_tencent.py || status=1
echo "== e2e on PostgreSQL"
IKON_E2E_DATABASE="$DATABASE_URL" .cache/venv/bin/python -m unittest -v tests/e2e/test_tencent.py || status=1
exit $status

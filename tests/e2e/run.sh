#!/usr/bin/env bash
# End-to-end tests: the official Tencent Cloud Python SDK and tccli (pinned, installed into
# .cache/venv by scripts/install-api-clients.sh) against a real `ikon serve`, once on the
# embedded SQLite catalog and once on PostgreSQL (--database $DATABASE_URL; when it is unset
# a throwaway server is started with scripts/start-postgres.sh and stopped afterwards).
# Builds `ikon` with cargo (honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS).
# Usage: tests/e2e/run.sh [unittest args, e.g. test_sdk.SharingPost test_wire]  (default: every test_*.py)
# test_transfer needs an S3 engine: IKON_TEST_S3_* (scripts/start-s3.sh), else one is started
# here (IKON_E2E_S3ROOT, IKON_E2E_S3PORT) and stopped afterwards.
# Nothing is skipped: a missing client, tool or server fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bash scripts/install-api-clients.sh
command -v qemu-img >/dev/null || { echo "e2e: qemu-img is required (scripts/install-test-deps.sh)" >&2; exit 1; }
cargo build -q -p ikon-cli --locked
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
export IKON_BIN="$target/debug/ikon"
export IKON_TCCLI="$root/.cache/venv/bin/tccli"
[ -x "$IKON_BIN" ] || { echo "e2e: $IKON_BIN was not built" >&2; exit 1; }
started_pg=0
if [ -z "${DATABASE_URL:-}" ]; then
  export PGROOT=${IKON_E2E_PGROOT:-/tmp/ikon-pg-e2e} PGPORT=${IKON_E2E_PGPORT:-55434}
  env_lines=$(bash scripts/start-postgres.sh) || { echo "start-postgres failed: an oracle the tests need is missing" >&2; exit 1; }
  eval "$env_lines"
  started_pg=1
fi
started_s3=0
if [ -z "${IKON_TEST_S3_ENDPOINT:-}" ]; then   # test_transfer needs a real S3 engine
  export S3ROOT=${IKON_E2E_S3ROOT:-/tmp/ikon-s3-e2e} S3PORT=${IKON_E2E_S3PORT:-7490}
  env_lines=$(bash scripts/start-s3.sh) || { echo "start-s3 failed: an oracle the tests need is missing" >&2; exit 1; }
  eval "$env_lines"
  started_s3=1
fi
cleanup() {
  if [ "$started_pg" = 1 ]; then bash scripts/stop-postgres.sh || true; fi
  if [ "$started_s3" = 1 ]; then bash scripts/stop-s3.sh || true; fi
}
trap cleanup EXIT
# Proxies would intercept the SDK's loopback calls.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
# The suites run from tests/e2e (so `import harness` works); arguments are unittest's.
if [ $# -gt 0 ]; then args=(-v "$@"); else args=(discover -v -s . -p 'test_*.py'); fi
leaked() { pgrep -f "^$IKON_BIN serve" || true; }
status=0
echo "== e2e on SQLite"
(cd tests/e2e && IKON_E2E_DATABASE= "$root/.cache/venv/bin/python" -m unittest "${args[@]}") || status=1
echo "== e2e on PostgreSQL ($(sed -E 's#//([^:@/]+):[^@]*@#//\1:***@#' <<<"$DATABASE_URL"))"
# On PostgreSQL the catalog suite (crates/ikon-catalog) already runs every catalog test; here
# one whole-service pass (test_tencent: every action and error path through the SDK and
# tccli) proves `ikon serve --database postgres://…`. IKON_E2E_FULL_PG=1 runs everything.
pg_args=("${args[@]}")
if [ $# -eq 0 ] && [ "${IKON_E2E_FULL_PG:-0}" != 1 ]; then pg_args=(-v test_tencent test_instances test_market test_import test_transfer test_ali_transfer); fi
(cd tests/e2e && IKON_E2E_DATABASE="$DATABASE_URL" "$root/.cache/venv/bin/python" -m unittest "${pg_args[@]}") \
  || status=1
if [ -n "$(leaked)" ]; then
  echo "e2e: ikon serve processes left running after the suite:" >&2
  ps -o pid,args -p "$(leaked | paste -sd,)" >&2 || true
  status=1
fi
exit $status

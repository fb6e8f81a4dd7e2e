#!/usr/bin/env bash
# End-to-end tests of the Alibaba ECS 2014-05-26 dialect: Alibaba Cloud's own Python SDKs —
# the Tea SDK (alibabacloud-ecs20140526; ACS3-HMAC-SHA256 and RPC V1) and the legacy SDK
# (aliyun-python-sdk-ecs; RPC V1), pinned and installed into .cache/venv by
# scripts/install-api-clients.sh — against a real `ikon serve --preset alibaba` (and one
# server on the default Tencent preset), once on the embedded SQLite catalog and once on
# PostgreSQL (--database $DATABASE_URL; when it is unset a throwaway server is started with
# scripts/start-postgres.sh and stopped afterwards). Uses tests/e2e/harness.py.
# Builds `ikon` with cargo (honours CARGO_TARGET_DIR and CARGO_BUILD_JOBS).
# Usage: tests/e2e-alibaba/run.sh [unittest args, e.g. test_alibaba.AlibabaSdks.test_tasks_of_an_account]
# Nothing is skipped: a missing client, tool or server fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bash scripts/install-api-clients.sh
command -v qemu-img >/dev/null || { echo "e2e-alibaba: qemu-img is required (scripts/install-test-deps.sh)" >&2; exit 1; }
cargo build -q -p ikon-cli --locked
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
export IKON_BIN="$target/debug/ikon"
export IKON_TCCLI="$root/.cache/venv/bin/tccli"
[ -x "$IKON_BIN" ] || { echo "e2e-alibaba: $IKON_BIN was not built" >&2; exit 1; }
started_pg=0
if [ -z "${DATABASE_URL:-}" ]; then
  export PGROOT=${IKON_E2E_PGROOT:-/tmp/ikon-pg-e2e-ali} PGPORT=${IKON_E2E_PGPORT:-55435}
  env_lines=$(bash scripts/start-postgres.sh) || { echo "start-postgres failed: an oracle the tests need is missing" >&2; exit 1; }
  eval "$env_lines"
  started_pg=1
fi
cleanup() { if [ "$started_pg" = 1 ]; then bash scripts/stop-postgres.sh || true; fi; }
trap cleanup EXIT
command -v psql >/dev/null || { echo "e2e-alibaba: psql is required for the PostgreSQL pass" >&2; exit 1; }
# Proxies would intercept the SDKs' loopback calls.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
if [ $# -gt 0 ]; then args=(-v "$@"); else args=(discover -v -s . -p 'test_*.py'); fi
leaked() { pgrep -f "^$IKON_BIN serve" || true; }
status=0
echo "== e2e-alibaba on SQLite"
(cd tests/e2e-alibaba && IKON_E2E_DATABASE= "$root/.cache/venv/bin/python" -m unittest "${args[@]}") || status=1
echo "== e2e-alibaba on PostgreSQL ($(sed -E 's#//([^:@/]+):[^@]*@#//\1:***@#' <<<"$DATABASE_URL"))"
(cd tests/e2e-alibaba && IKON_E2E_DATABASE="$DATABASE_URL" "$root/.cache/venv/bin/python" -m unittest "${args[@]}") \
  || status=1
if [ -n "$(leaked)" ]; then
  echo "e2e-alibaba: ikon serve processes left running after the suite:" >&2
  ps -o pid,args -p "$(leaked | paste -sd,)" >&2 || true
  status=1
fi
exit $status

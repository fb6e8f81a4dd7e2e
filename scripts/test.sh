#!/usr/bin/env bash
# Run every test: installs the oracles and fixture tools (idempotently), fetches the real
# sample images, starts a throwaway PostgreSQL server (the catalog suite runs on SQLite and
# PostgreSQL) and a real S3 engine (Ceph RGW: the chunk store suite runs on a directory and
# on S3; exports and cross-region copies use it), checks formatting and lints, runs the
# whole workspace test suite, then the end-to-end tests that drive `ikon serve` with
# Tencent's own Python SDK and tccli, then with Alibaba Cloud's two Python SDKs (Tea and
# legacy).
# Oracles are never optional: a missing one fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)"; }

step "installing test tools"
bash scripts/install-test-deps.sh
step "fetching sample images"
bash scripts/fetch-sample-images.sh .cache/samples
export IKON_SAMPLES="$PWD/.cache/samples/qemu"

step "starting PostgreSQL"
env_lines=$(bash scripts/start-postgres.sh) || { echo "start-postgres failed: an oracle the tests need is missing" >&2; exit 1; }
eval "$env_lines"
export IKON_TEST_DATABASE_URL="$DATABASE_URL"
trap 'bash scripts/stop-postgres.sh >/dev/null 2>&1 || true' EXIT

step "starting the S3 engine (Ceph RGW)"
env_lines=$(bash scripts/start-s3.sh) || { echo "start-s3 failed: an oracle the tests need is missing" >&2; exit 1; }
eval "$env_lines"
trap 'bash scripts/stop-postgres.sh >/dev/null 2>&1 || true; bash scripts/stop-s3.sh >/dev/null 2>&1 || true' EXIT

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee .cache/test.log
status=${PIPESTATUS[0]}
step "end-to-end: Tencent SDK and tccli against ikon serve (SQLite, then PostgreSQL)"
if ! bash tests/e2e/run.sh 2>&1 | tee .cache/e2e.log; then
    status=1
fi
step "end-to-end: Alibaba Tea and legacy SDKs against ikon serve --preset alibaba (SQLite, then PostgreSQL)"
if ! bash tests/e2e-alibaba/run.sh 2>&1 | tee .cache/e2e-alibaba.log; then
    status=1
fi
passed=$(grep -Eo '[0-9]+ passed' .cache/test.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' .cache/test.log | awk '{s+=$1} END {print s+0}')
step "done"
echo "${passed} passed, ${failed} failed"
exit "$status"

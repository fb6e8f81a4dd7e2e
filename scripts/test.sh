#!/usr/bin/env bash
# Run every test: installs the oracles and fixture tools (idempotently), fetches the real
# sample images, starts a throwaway PostgreSQL server (the catalog suite runs on SQLite and
# PostgreSQL) and a real S3 engine (Ceph RGW: the chunk store suite runs on a directory and
# on S3; exports and cross-region copies use it), checks formatting, the dependencies'
# licences and sources (scripts/check-deps.py) and lints, runs the
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
bash scripts/install-browser.sh
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
step "dependencies: licences and sources"
python3 scripts/check-deps.py
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test"
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee .cache/test.log || status=1
step "end-to-end: Tencent SDK and tccli against ikon serve (SQLite, then PostgreSQL)"
bash tests/e2e/run.sh 2>&1 | tee .cache/e2e.log || status=1
step "end-to-end: Alibaba Tea and legacy SDKs against ikon serve --preset alibaba (SQLite, then PostgreSQL)"
bash tests/e2e-alibaba/run.sh 2>&1 | tee .cache/e2e-alibaba.log || status=1
step "crash trials: kill -9 of ikon serve mid-work, 3 trials"; bash scripts/crash-trials.sh --trials 3 2>&1 | tee .cache/crash-trials.log || status=1

# Counts per suite: cargo's "N passed; M failed" lines, and unittest's "Ran N tests" with
# its closing "OK" / "FAILED (failures=F, errors=E)".
rust_counts() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         END { printf "%d %d\n", p, f }' "$1"
}
unittest_counts() {
    awk '/^Ran [0-9]+ tests? in/ { ran += $2 }
         /^FAILED \(/ { s = $0; while (match(s, /(failures|errors)=[0-9]+/)) { v = substr(s, RSTART, RLENGTH); sub(/.*=/, "", v); bad += v; s = substr(s, RSTART + RLENGTH) } }
         END { printf "%d %d\n", ran - bad, bad }' "$1"
}
total_passed=0
total_failed=0
summary() {
    local name=$1 passed=$2 failed=$3
    echo "  ${name}: ${passed} passed, ${failed} failed"
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
}
step "done"
read -r p f < <(rust_counts .cache/test.log); summary "Rust workspace (cargo test)" "$p" "$f"
read -r p f < <(unittest_counts .cache/e2e.log); summary "end-to-end, Tencent SDK and tccli" "$p" "$f"
read -r p f < <(unittest_counts .cache/e2e-alibaba.log); summary "end-to-end, Alibaba SDKs" "$p" "$f"
if [ "$status" -ne 0 ] && [ "$total_failed" -eq 0 ]; then
    # A suite failed before or outside its tests (a build, a server that did not start).
    echo "  a suite failed outside its tests (see above)"
    total_failed=1
fi
echo "${total_passed} passed, ${total_failed} failed"
exit "$status"

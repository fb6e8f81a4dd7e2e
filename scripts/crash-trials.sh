#!/usr/bin/env bash
# Crash trials: each trial starts a random mix of workloads against one `ikon serve` (SQLite
# catalog, local chunk stores) — publish, HTTP import, upload import, SyncImages,
# ExportImages, CreateImage, NBD writes with flushes, GC, DeleteImages — kill -9s the server
# (and the in-flight client processes) at a random moment, restarts it, lets the work
# settle and checks that every image is NORMAL with its source's content or failed and
# deletable, that no task is stuck, that every flushed NBD write reads back and that
# `ikon admin gc` leaves `ikon admin fsck` clean. Details: scripts/crash_trials.py.
#
# Usage: scripts/crash-trials.sh [--trials N] [--seed S] [--jobs J] [--keep] [--window SECONDS]
#   --trials N   trials to run (default 10)
#   --seed S     the run's seed (default: random, printed; the same --seed and --jobs replay
#                the same workload mixes and kill moments)
#   --jobs J     lanes side by side, each with its own server and data dir (default 3:
#                most of a trial is waiting for leases and write sessions to run out)
#   --keep       keep the data dirs of failed trials (printed at the end)
# Ends with `trials N, failures F, half-made H, stuck S, lost writes L, orphans after gc O`;
# exits 1 if any of them is non-zero.
#
# Needs qemu-img and qemu-io (scripts/install-test-deps.sh) and the virtualenv with Tencent's
# Python SDK (scripts/install-api-clients.sh); installs nothing itself and fails when one is
# missing. Builds `ikon` with cargo (debug; honours CARGO_TARGET_DIR) unless IKON_BIN names
# a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
missing=0
for tool in qemu-img qemu-io cp; do
  command -v "$tool" >/dev/null || { echo "crash-trials: $tool is required (bash scripts/install-test-deps.sh)" >&2; missing=1; }
done
py="$root/.cache/venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c 'import tencentcloud.cvm.v20170312' 2>/dev/null; then
  echo "crash-trials: Tencent's Python SDK is required in $root/.cache/venv (bash scripts/install-api-clients.sh)" >&2
  missing=1
fi
[ "$missing" = 0 ] || exit 1
if [ -z "${IKON_BIN:-}" ]; then
  cargo build -q -p ikon-cli --locked
  target=${CARGO_TARGET_DIR:-$root/target}
  case $target in /*) ;; *) target=$root/$target ;; esac
  IKON_BIN="$target/debug/ikon"
fi
[ -x "$IKON_BIN" ] || { echo "crash-trials: $IKON_BIN is not an executable" >&2; exit 1; }
# Proxies would intercept the SDK's loopback calls.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
exec "$py" scripts/crash_trials.py --bin "$IKON_BIN" "$@"

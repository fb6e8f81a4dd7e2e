#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 10) with libFuzzer, memory capped at
# 256 MiB and one second per input (no sanitizer: the parsers are safe Rust, and ASan's
# quarantine would make the memory cap meaningless), starting from the committed seeds (fuzz/seeds/<target>)
# plus seeds made here with qemu-img. Works on the stable toolchain (RUSTC_BOOTSTRAP lets
# cargo-fuzz pass its sanitizer flags). Crashes land in fuzz/artifacts/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
corpus_root=.cache/fuzz-corpus
mkdir -p "$corpus_root/vhdx"
[ -f "$corpus_root/vhdx/seed.vhdx" ] || qemu-img create -q -f vhdx -o block_size=1M,log_size=1M "$corpus_root/vhdx/seed.vhdx" 1M
for t in "${targets[@]}"; do
    c="$corpus_root/$t"; mkdir -p "$c"
    [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$c"/ 2>/dev/null || true
    echo "== fuzz $t for ${secs}s"
    cargo fuzz run --sanitizer none "$t" "$c" -- -max_total_time="$secs" -rss_limit_mb=256 -timeout=1 -max_len=4194304
done

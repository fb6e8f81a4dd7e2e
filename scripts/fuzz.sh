#!/usr/bin/env bash
# Run Ikon's cargo-fuzz targets (fuzz/fuzz_targets; bodies in fuzz/src) for SECONDS each
# (default 10), JOBS at a time (default 2), and print a table of what each did.
#
# Usage: scripts/fuzz.sh [--jobs N] [--merge] [SECONDS] [TARGET…]  (no TARGET = every target)
#
# - libFuzzer with no sanitizer (the parsers are safe Rust, and ASan's quarantine would make
#   a memory cap meaningless), 1 s per input, inputs up to 4 MiB; cargo-fuzz builds with
#   debug assertions and overflow checks on. Memory: an input may allocate at most 256 MiB
#   at once and hold 512 MiB of Rust heap (the fuzz binaries' allocator, fuzz/src/lib.rs,
#   aborts past that); libFuzzer's RSS limit is only a 2 GiB backstop, because it also
#   counts the corpus libFuzzer keeps in memory (hundreds of MiB for disk targets). Works
#   on the stable toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz pass its flags); installs
#   cargo-fuzz when it is missing.
# - Corpora live in .cache/fuzz-corpus/<target> and are kept, so campaigns accumulate; the
#   committed seeds (fuzz/seeds/<target>, rebuilt by fuzz/make-seeds.sh) are read as a second
#   corpus directory, fuzz/dicts/<target>.dict (if any) as a dictionary. libFuzzer's output:
#   .cache/fuzz-logs/<target>.log. A corpus is first minimised (libFuzzer -merge=1: the
#   smallest set with the same coverage) when it holds more than 512 MiB, or always with
#   --merge, so that it fits in memory campaign after campaign.
# - Findings (crash-*, timeout-*, oom-*, leak-* files) land in fuzz/artifacts/<target>/.
#   Once fixed, move the file to fuzz/regressions/<target>/: `cargo test` replays it
#   (crates/*/tests/fuzz_regressions.rs). A target stops at its first finding.
# - The table (markdown) gives per target: seconds run, executions (libFuzzer's
#   stat::number_of_executed_units), coverage (edges), corpus files afterwards, findings new
#   in this run, and open findings (all finding files in fuzz/artifacts/<target>/). It is
#   also written to .cache/fuzz-logs/summary.md. Exit status 1 when any target has an open
#   finding or did not run.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }
jobs=2 merge=0
while [ $# -gt 0 ]; do
    case $1 in
        --merge) merge=1; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --jobs=*) jobs=${1#--jobs=}; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) break ;;
    esac
done
secs=10
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "--jobs must be a positive number" >&2; exit 2; }

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

mapfile -t all < <(cargo fuzz list)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    printf '%s\n' "${all[@]}" | grep -qx -- "$t" || { echo "no fuzz target $t (have: ${all[*]})" >&2; exit 2; }
done

echo "== building ${#all[@]} fuzz targets (cargo fuzz build --sanitizer none)"
cargo fuzz build --sanitizer none
triple=$(rustc -vV | sed -n 's/^host: //p')
bin=fuzz/target/$triple/release

corpus_root=.cache/fuzz-corpus
logs=.cache/fuzz-logs
results=$(mktemp -d "${TMPDIR:-/tmp}/ikon-fuzz.XXXX"); trap 'rm -rf "$results"' EXIT
mkdir -p "$corpus_root" "$logs"
# An 8 MiB qemu-img VHDX (libFuzzer keeps its first 4 MiB), made once if qemu-img is here.
if command -v qemu-img >/dev/null && [ ! -f "$corpus_root/vhdx/seed.vhdx" ]; then
    mkdir -p "$corpus_root/vhdx"
    qemu-img create -q -f vhdx -o block_size=1M,log_size=1M "$corpus_root/vhdx/seed.vhdx" 1M || true
fi

finding_files() { # DIR: finding files in it, one per line, sorted
    [ -d "$1" ] || return 0
    find "$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) \
        -printf '%f\n' | sort
}

run_one() { # TARGET: fuzz it, write "target|secs|execs|cov|corpus|new|open|rc" to $results/TARGET
    local t=$1 c=$corpus_root/$1 art=fuzz/artifacts/$1 log=$logs/$1.log
    mkdir -p "$c" "$art"
    local before; before=$(finding_files "$art")
    local extra=()
    [ -d "fuzz/seeds/$t" ] && extra+=("fuzz/seeds/$t")
    local opts=(-artifact_prefix="$art/" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=1
                -max_len=4194304 -print_final_stats=1)
    [ -f "fuzz/dicts/$t.dict" ] && opts+=(-dict="fuzz/dicts/$t.dict")
    if [ "$merge" = 1 ] || [ "$(du -sm "$c" | cut -f1)" -gt 512 ]; then
        local m; m=$(mktemp -d "$corpus_root/.merge-$t.XXXX")
        if "$bin/$t" -merge=1 -rss_limit_mb=4096 -timeout=10 -max_len=4194304 "$m" "$c" \
            >"$logs/$t.merge.log" 2>&1; then
            echo "== $t: corpus minimised from $(find "$c" -type f | wc -l) to $(find "$m" -type f | wc -l) files"
            rm -rf "$c"; mv "$m" "$c"
        else
            echo "== $t: minimising the corpus failed (see $logs/$t.merge.log); kept as is"; rm -rf "$m"
        fi
    fi
    local start=$SECONDS rc=0
    "$bin/$t" "${opts[@]}" "$c" "${extra[@]}" >"$log" 2>&1 || rc=$?
    local took=$((SECONDS - start))
    local execs cov corpus new open
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    cov=$(sed -n 's/^#[0-9]*.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
    corpus=$(find "$c" -type f | wc -l)
    new=$(comm -13 <(printf '%s\n' "$before" | sed '/^$/d') <(finding_files "$art") | wc -l)
    open=$(finding_files "$art" | wc -l)
    echo "$t|$took|${execs:--}|${cov:--}|$corpus|$new|$open|$rc" >"$results/$t"
    echo "== $t: ${took}s, ${execs:-?} executions, $new new finding(s), exit $rc (log $log)"
}

echo "== fuzzing ${#targets[@]} target(s) for ${secs}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait || true

summary=$logs/summary.md
{
    echo "| target | seconds | executions | coverage | corpus | new findings | open findings |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in "${targets[@]}"; do
        if [ -f "$results/$t" ]; then
            IFS='|' read -r name took execs cov corpus new open rc <"$results/$t"
            echo "| $name | $took | $execs | $cov | $corpus | $new | $open |"
        else
            echo "| $t | - | - | - | - | - | did not run |"
        fi
    done
} >"$summary"
echo; cat "$summary"; echo

status=0
for t in "${targets[@]}"; do
    if [ ! -f "$results/$t" ]; then status=1; continue; fi
    IFS='|' read -r _ _ _ _ _ new open rc <"$results/$t"
    [ "$open" -gt 0 ] && status=1
    finding_files "fuzz/artifacts/$t" | sed "s|^|open finding: fuzz/artifacts/$t/|"
    if [ "$rc" -ne 0 ] && [ "$new" -eq 0 ]; then
        echo "$t exited $rc without a finding file: see $logs/$t.log"; status=1
    fi
done
exit $status

#!/bin/bash
# Benchmark guest inspection: a 50 GiB sparse guest (Ubuntu 22.04 fixture) in FORMAT
# (default qcow2; raw works on every branch), Ikon's wall time and bytes read (pread64 sum
# via strace, if installed) next to virt-inspector's wall time (if installed; libguestfs
# under TCG: LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg).
# Usage: scripts/bench-inspect.sh [FORMAT]   (build ikon first: cargo build --release -p ikon-cli)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FMT=${1:-qcow2}
IKON=${IKON:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ikon}
[ -x "$IKON" ] || IKON=${CARGO_TARGET_DIR:-$ROOT/target}/debug/ikon
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
DISK_SIZE=50G TMPDIR=$W "$ROOT/scripts/fixtures/make-linux.sh" "$W/disk.raw" ubuntu2204
IMG=$W/disk.raw
if [ "$FMT" != raw ]; then qemu-img convert -f raw -O "$FMT" "$W/disk.raw" "$W/disk.$FMT"; IMG=$W/disk.$FMT; fi
"$IKON" img inspect "$IMG" >/dev/null   # warm the page cache for both tools alike
s=$(date +%s.%N); "$IKON" img inspect "$IMG" >/dev/null; e=$(date +%s.%N)
printf 'ikon inspect (%s, 50 GiB virtual): %.3f s\n' "$FMT" "$(echo "$e - $s" | bc -l)"
if command -v strace >/dev/null; then
  strace -f -e trace=pread64,read -o "$W/trace" "$IKON" img inspect "$IMG" >/dev/null
  awk -F'= ' '/pread64|read\(/ { n=$NF+0; if (n>0) t+=n } END { printf "ikon bytes read: %d (%.2f MiB)\n", t, t/1048576 }' "$W/trace"
fi
if command -v virt-inspector >/dev/null; then
  s=$(date +%s.%N)
  LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg virt-inspector -a "$IMG" >/dev/null
  e=$(date +%s.%N)
  printf 'virt-inspector: %.3f s\n' "$(echo "$e - $s" | bc -l)"
else
  echo "virt-inspector not installed (see the project's tool list: libguestfs-tools)"
fi

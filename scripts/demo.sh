#!/usr/bin/env bash
# The toolbox on a real image: builds ikon (release), then inspects, converts, checks and
# compares the Virtual PC VHD from QEMU's sample images (fetched with apt on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p ikon-cli
bash scripts/fetch-sample-images.sh .cache/samples
ikon=target/release/ikon
src=.cache/samples/qemu/virtualpc-dynamic.vhd
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
set -x
$ikon img info "$src"
$ikon img convert -p -O vmdk -o subformat=streamOptimized "$src" "$out/disk.vmdk"
$ikon img info "$out/disk.vmdk"
$ikon img check "$out/disk.vmdk"
$ikon img compare "$src" "$out/disk.vmdk"

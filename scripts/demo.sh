#!/usr/bin/env bash
# The toolbox on a real guest, as someone preparing an image would use it. Builds ikon
# (release) and, on the spot, an Ubuntu 22.04 system disk of 10 GiB (MBR; an ext4 root holding
# a realistic tree with os-release, fstab, kernel, initramfs and network configuration, plus
# this machine's /usr/bin and /usr/share/doc as real content, about 700 MiB; and a swap
# partition; scripts/fixtures/make-linux.sh, no root mounts or VM needed). Then:
#   info and map       what the file is and where its data lies
#   inspect            the OS inside (distribution, version, libosinfo id, kernels, fstab...)
#   precheck           both clouds' import rules, each with its verdict and reason
#   convert -p         to a streamOptimized VMDK with the progress bar
#   check and compare  the result is consistent and holds the same disk
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-guest-deps.sh
cargo build --release --locked -q -p ikon-cli
ikon=target/release/ikon
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== building an Ubuntu 22.04 guest disk in $out"
DISK_SIZE=10G ROOT_MIB=1200 EXTRA_DIRS="/usr/bin /usr/share/doc" \
  bash scripts/fixtures/make-linux.sh "$out/ubuntu.raw" ubuntu2204
"$ikon" img convert -q -O qcow2 "$out/ubuntu.raw" "$out/ubuntu.qcow2"
rm "$out/ubuntu.raw"
img=$out/ubuntu.qcow2
set -x
"$ikon" img info "$img"
"$ikon" img map "$img"
"$ikon" img inspect "$img"
"$ikon" img precheck --rules tencent "$img" || true
"$ikon" img precheck --rules alibaba "$img" || true
"$ikon" img convert -p -O vmdk -o subformat=streamOptimized "$img" "$out/ubuntu.vmdk"
"$ikon" img info "$out/ubuntu.vmdk"
"$ikon" img check "$out/ubuntu.vmdk"
"$ikon" img compare "$img" "$out/ubuntu.vmdk"

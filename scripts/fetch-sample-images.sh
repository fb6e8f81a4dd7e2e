#!/usr/bin/env bash
# Fetch real images written by other programs (QEMU's iotests sample images: Virtual PC,
# Hyper-V and Disk2VHD VHDs, Hyper-V/Disk2VHD/QEMU VHDX, VMware streamOptimized VMDK,
# fuzzer-made broken VHD/VMDK, bochs, parallels, cloop, dmg) from Debian's qemu source
# package, through apt only. GPL test data: fetched at test time, never committed.
# Usage: fetch-sample-images.sh DEST     (idempotent: does nothing when DEST is complete)
set -euo pipefail
DEST=${1:?usage: $0 DEST}
mkdir -p "$DEST"; DEST=$(cd "$DEST" && pwd)
if [ -f "$DEST/SHA256SUMS" ] && (cd "$DEST" && sha256sum --quiet -c SHA256SUMS 2>/dev/null); then
    exit 0
fi
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/ikon-debsrc.sources <<SRC
Types: deb-src
URIs: ${mirror}
Suites: ${suite}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >/dev/null
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get source --download-only -q qemu >/dev/null 2>&1) || {
    apt-get update -q >/dev/null; (cd "$tmp" && apt-get source --download-only -q qemu >/dev/null)
}
tarball=$(ls "$tmp"/qemu_*.orig.tar.* | head -1)
tar xf "$tarball" -C "$tmp" --wildcards '*/tests/qemu-iotests/sample_images/*'
rm -rf "$DEST/qemu"; mkdir -p "$DEST/qemu"
cp "$tmp"/qemu-*/tests/qemu-iotests/sample_images/* "$DEST/qemu/"
(cd "$DEST/qemu" && for f in *.bz2; do bunzip2 -f "$f"; done)
(cd "$DEST" && find qemu -type f | sort | xargs sha256sum > SHA256SUMS)
echo "fetch-sample-images: $(wc -l < "$DEST/SHA256SUMS") files from $(basename "$tarball") in $DEST"

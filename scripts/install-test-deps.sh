#!/usr/bin/env bash
# Install, idempotently, every tool the test suite uses as an oracle or fixture builder.
# A no-op when everything is present. Needs root (apt-get) only when something is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
command -v qemu-img  >/dev/null || need+=(qemu-utils)
command -v qemu-io   >/dev/null || need+=(qemu-utils)
command -v qemu-nbd  >/dev/null || need+=(qemu-utils)
command -v nbdinfo   >/dev/null || need+=(libnbd-bin)
command -v sfdisk    >/dev/null || need+=(fdisk)
command -v mkisofs   >/dev/null || need+=(genisoimage)
command -v python3   >/dev/null || need+=(python3)
command -v bunzip2   >/dev/null || need+=(bzip2)
command -v xz        >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
    echo "install-test-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# Guest-inspection fixtures have their own list; virt-inspector is the inspection oracle.
if [ -f "$here/install-guest-deps.sh" ]; then
    bash "$here/install-guest-deps.sh"
fi
bash "$here/install-guest-oracle.sh"

for t in qemu-img qemu-io qemu-nbd nbdinfo sfdisk mkisofs python3 virt-inspector; do
    command -v "$t" >/dev/null || { echo "install-test-deps: $t is still missing" >&2; exit 1; }
done

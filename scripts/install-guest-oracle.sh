#!/usr/bin/env bash
# Install libguestfs' virt-inspector (the oracle for `ikon img inspect`) idempotently.
# The machine's qemu-utils comes from bookworm-backports and "Breaks" the qemu-system 7.2
# that bookworm's libguestfs pulls in, so qemu-system-* are taken from backports at the same
# version. virt-inspector must run with LIBGUESTFS_BACKEND=direct
# LIBGUESTFS_BACKEND_SETTINGS=force_tcg here (KVM aborts on this machine).
set -euo pipefail
command -v virt-inspector >/dev/null && exit 0
export DEBIAN_FRONTEND=noninteractive
apt_() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > /etc/apt/sources.list.d/ikon-bookworm-backports.sources <<SRC
Types: deb
URIs: ${mirror}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt_ update -q >/dev/null
qv=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
pin=()
if [[ "$qv" == *bpo* ]]; then
    pin=(qemu-system-x86="$qv" qemu-system-common="$qv" qemu-system-data="$qv" qemu-block-extra="$qv" seabios/bookworm-backports)
fi
apt_ install -y -q --no-install-recommends libguestfs-tools linux-image-amd64 "${pin[@]}" >/dev/null
command -v virt-inspector >/dev/null

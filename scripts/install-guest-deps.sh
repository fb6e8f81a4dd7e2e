#!/bin/bash
# Install the Debian packages the ikon-guest fixtures need (idempotent: a no-op when every
# tool is already present; apt-get update runs at most once).
set -euo pipefail
declare -A PKG=(
  [mkfs.ext4]=e2fsprogs [debugfs]=e2fsprogs [sfdisk]=fdisk [sgdisk]=gdisk
  [mkfs.vfat]=dosfstools [mcopy]=mtools [mkntfs]=ntfs-3g [ntfscp]=ntfs-3g
  [hivexregedit]=libhivex-bin [mkfs.xfs]=xfsprogs [faketime]=faketime
  [python3]=python3 [gcc]=gcc [qemu-img]=qemu-utils [mkswap]=util-linux [hivexget]=libhivex-bin [ntfsfix]=ntfs-3g
  [debootstrap]=debootstrap
)
need=()
for t in "${!PKG[@]}"; do
  command -v "$t" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$t" >/dev/null 2>&1 || need+=("${PKG[$t]}")
done
# ntfs-mkdir.c (scripts/fixtures) builds against libntfs-3g
[ -f /usr/include/ntfs-3g/volume.h ] || need+=(ntfs-3g-dev)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=; [ "$(id -u)" != 0 ] && SUDO=sudo
$SUDO apt-get update -qq
# shellcheck disable=SC2046
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u)

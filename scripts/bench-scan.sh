#!/bin/bash
# Benchmark the hygiene scan: the 50 GiB sparse Linux fixture (Ubuntu 22.04 tree from
# make-linux.sh) with one of every Linux finding planted by debugfs, in FORMAT (default
# qcow2). Prints the scan's own figures (wall time including opening and inspecting, bytes
# read through the disk layer) as the median of RUNS runs, and the bytes the process read
# from the file (pread64/read sum via strace, if installed). The goal: under 0.5 s, under
# 64 MiB read.
# Usage: scripts/bench-scan.sh [FORMAT] [RUNS]   (builds ikon in release mode first)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FMT=${1:-qcow2}; RUNS=${2:-5}
PATH=$PATH:/usr/sbin:/sbin
(cd "$ROOT" && cargo build -q --release -p ikon-cli)
IKON=${CARGO_TARGET_DIR:-$ROOT/target}/release/ikon
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
DISK_SIZE=50G TMPDIR=$W "$ROOT/scripts/fixtures/make-linux.sh" "$W/disk.raw" ubuntu2204
cd "$W"
printf 'root:$6$salt$hash:19000:0:99999:7:::\nbob::19000:0:99999:7:::\n' > shadow
printf 'ssh-ed25519 AAAAC3Nza maker@laptop\n' > ak
printf 'ls\nmysql -p\n' > hist
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n' > key
printf 'PermitRootLogin yes\nInclude /etc/ssh/sshd_config.d/*.conf\n' > sshd
printf 'PasswordAuthentication yes\n' > pw.conf
printf '0123456789abcdef0123456789abcdef\n' > mid
printf '[default]\naws_access_key_id=AKIA\n' > aws
debugfs -w "disk.raw?offset=1048576" -f - >/dev/null 2>&1 <<'CMDS'
rm /etc/shadow
write shadow /etc/shadow
mkdir /root/.ssh
write ak /root/.ssh/authorized_keys
write key /root/.ssh/id_ed25519
write hist /root/.bash_history
mkdir /etc/ssh
mkdir /etc/ssh/sshd_config.d
write sshd /etc/ssh/sshd_config
write pw.conf /etc/ssh/sshd_config.d/50-pw.conf
write key /etc/ssh/ssh_host_ed25519_key
rm /etc/machine-id
write mid /etc/machine-id
mkdir /home/bob
mkdir /home/bob/.aws
write aws /home/bob/.aws/credentials
CMDS
IMG=disk.raw
if [ "$FMT" != raw ]; then qemu-img convert -f raw -O "$FMT" disk.raw "disk.$FMT"; IMG=disk.$FMT; fi
"$IKON" img scan "$IMG" >/dev/null || true   # warm the page cache
for i in $(seq "$RUNS"); do
  "$IKON" img scan "$IMG" --output json > "run$i.json" || true
done
python3 - "$RUNS" <<'PY'
import json, statistics, sys
runs = [json.load(open("run%d.json" % i)) for i in range(1, int(sys.argv[1]) + 1)]
ms = statistics.median(r["elapsed_ms"] for r in runs)
rb = runs[0]["read_bytes"]
ids = sorted({f["id"] for f in runs[0]["findings"]})
print("findings: %d (%s)" % (len(runs[0]["findings"]), ", ".join(ids)))
print("scan of the 50 GiB fixture: %.1f ms median of %d (goal < 500 ms), %.2f MiB read through the disk layer (goal < 64 MiB)"
      % (ms, len(runs), rb / 1048576))
PY
if command -v strace >/dev/null; then
  strace -f -e trace=pread64,read -o trace "$IKON" img scan "$IMG" >/dev/null || true
  awk -F'= ' '/pread64|read\(/ { n=$NF+0; if (n>0) t+=n } END { printf "bytes read from the file (strace): %d (%.2f MiB)\n", t, t/1048576 }' trace
fi

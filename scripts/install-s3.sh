#!/usr/bin/env bash
# Installs, idempotently, the S3 engine the tests run against: Ceph (mon, osd, mgr) and its
# RADOS Gateway from Debian's packages (~60 s the first time, a no-op afterwards), plus curl
# (used to create buckets with SigV4-signed requests).
set -euo pipefail
need=()
for t in radosgw ceph-mon ceph-osd ceph-mgr ceph radosgw-admin monmaptool ceph-authtool uuidgen curl; do
    command -v "$t" >/dev/null || need+=("$t")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "install-s3: installing Ceph RGW (missing: ${need[*]})" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        ceph-mon ceph-osd ceph-mgr radosgw ceph-common uuid-runtime curl >/dev/null
fi
for t in radosgw ceph-mon ceph-osd ceph-mgr radosgw-admin uuidgen curl; do
    command -v "$t" >/dev/null || { echo "install-s3: $t is still missing" >&2; exit 1; }
done

#!/usr/bin/env bash
# Stops the cluster started by scripts/start-s3.sh (its daemons, by their own pid files) and
# removes its files. Env: S3ROOT (/tmp/ikon-s3).
set -uo pipefail
S3ROOT=${S3ROOT:-/tmp/ikon-s3}
[ -d "$S3ROOT" ] || exit 0
for p in "$S3ROOT"/run/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
for _ in $(seq 1 100); do
    alive=0
    for p in "$S3ROOT"/run/*.pid; do [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
done
for p in "$S3ROOT"/run/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
rm -rf "$S3ROOT"
exit 0

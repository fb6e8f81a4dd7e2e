#!/usr/bin/env bash
# Stops the server started by scripts/start-postgres.sh and removes its files.
set -euo pipefail
PGROOT=${PGROOT:-/tmp/ikon-pg}
PGBIN=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -1)/bin
if [ -f "$PGROOT/data/postmaster.pid" ]; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGROOT/data" -m fast stop >/dev/null
fi
rm -rf "$PGROOT"

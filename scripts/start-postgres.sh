#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: installs Debian's postgresql if absent
# (idempotent), then initdb + pg_ctl as the 'postgres' user (no systemd), trust auth,
# listening on 127.0.0.1 only, fsync off (test data). Prints `export DATABASE_URL=…`.
# Env: PGPORT (55432), PGROOT (/tmp/ikon-pg). Stop with scripts/stop-postgres.sh.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing postgresql from Debian's packages" >&2
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >/dev/null
fi
PGVER=$(ls /usr/lib/postgresql | sort -V | tail -1)
PGBIN=/usr/lib/postgresql/$PGVER/bin
PGROOT=${PGROOT:-/tmp/ikon-pg}
PGDATA=$PGROOT/data
PGSOCK=$PGROOT/sock
PGPORT=${PGPORT:-55432}
id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
if [ -f "$PGDATA/postmaster.pid" ]; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
fi
rm -rf "$PGROOT"
mkdir -p "$PGROOT"
chmod 755 "$PGROOT"
install -d -o postgres -g postgres -m 700 "$PGDATA"
install -d -o postgres -g postgres -m 775 "$PGSOCK"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
  -o "-p $PGPORT -k $PGSOCK -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -q \
  -c "CREATE ROLE ikon LOGIN CREATEDB" -c "CREATE DATABASE ikon OWNER ikon"
echo "export DATABASE_URL=postgres://ikon@127.0.0.1:$PGPORT/ikon"

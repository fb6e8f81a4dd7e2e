#!/usr/bin/env bash
# Load benchmark of the Tencent dialect: `ikon serve` (release build) with 10,000 images in
# the catalog, on SQLite and on PostgreSQL, driven by wrk with correctly signed TC3
# requests (signed once with the Tencent SDK's own signing code; a signature stays valid
# for 5 minutes, so wrk can replay it). Prints requests/s and p50/p99 latency per engine
# and query. Usage: scripts/bench-api.sh [SECONDS] (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
IMAGES=${IKON_BENCH_IMAGES:-10000}
export DEBIAN_FRONTEND=noninteractive
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
bash scripts/install-api-clients.sh
cargo build -q --release -p ikon-cli --locked
target=${CARGO_TARGET_DIR:-$PWD/target}
IKON="$target/release/ikon"
work=$(mktemp -d /tmp/ikon-bench-api.XXXXXX)
pg_started=0
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  [ "$pg_started" = 1 ] && bash scripts/stop-postgres.sh >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${DATABASE_URL:-}" ]; then
  export PGROOT=/tmp/ikon-pg-bench PGPORT=55433
  eval "$(bash scripts/start-postgres.sh)"
  pg_started=1
fi
qemu-img create -q -f qcow2 "$work/tiny.qcow2" 64M

# sign.py ACTION JSON HOST KEYFILE -> a wrk Lua script with one signed POST.
cat > "$work/sign.py" <<'PY'
import hashlib, json, sys, time
from tencentcloud.common.sign import Sign
action, body, host, keyfile = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4]
acc = json.load(open(keyfile))
ts = int(time.time())
canon = "POST\n/\n\ncontent-type:application/json\nhost:%s\n\ncontent-type;host\n%s" % (host, hashlib.sha256(body).hexdigest())
date = time.strftime("%Y-%m-%d", time.gmtime(ts))
scope = "%s/cvm/tc3_request" % date
s2s = "TC3-HMAC-SHA256\n%d\n%s\n%s" % (ts, scope, hashlib.sha256(canon.encode()).hexdigest())
sig = Sign.sign_tc3(acc["SecretKey"], date, "cvm", s2s)
hdr = {"Content-Type": "application/json", "Host": host, "X-TC-Action": action, "X-TC-Version": "2017-03-12",
       "X-TC-Region": "ap-guangzhou", "X-TC-Timestamp": str(ts),
       "Authorization": "TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=content-type;host, Signature=%s" % (acc["SecretId"], scope, sig)}
print('wrk.method = "POST"')
print('wrk.body = %s' % json.dumps(body.decode()))
for k, v in hdr.items():
    print('wrk.headers[%s] = %s' % (json.dumps(k), json.dumps(v)))
print('''
local errors = 0
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"Error"', 1, true) then errors = errors + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d requests=%d\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors, summary.requests))
end''')
PY

results=()
for engine in sqlite postgres; do
  data="$work/data-$engine"
  db=()
  if [ "$engine" = postgres ]; then
    name="bench_$RANDOM$RANDOM"
    psql "$DATABASE_URL" -q -c "CREATE DATABASE $name"
    db=(--database "${DATABASE_URL%/*}/$name")
  fi
  "$IKON" admin --data-dir "$data" "${db[@]}" account create bench --output json > "$work/key.json"
  t0=$(date +%s)
  "$IKON" admin --data-dir "$data" "${db[@]}" image publish --region ap-guangzhou --name bench --count "$IMAGES" "$work/tiny.qcow2" >/dev/null
  echo "$engine: $IMAGES images published in $(( $(date +%s) - t0 )) s" >&2
  for cache in 1 0; do
  IKON_CATALOG_CACHE=$cache "$IKON" serve --data-dir "$data" "${db[@]}" --listen 127.0.0.1:0 > "$work/serve.out" 2>"$work/serve.err" &
  server=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
  addr=$(sed -n 's/^ikon listening on http:\/\///p' "$work/serve.out")
  [ -n "$addr" ] || { cat "$work/serve.err" >&2; exit 1; }
  queries="default name-filter regions"
  [ "$cache" = 0 ] && queries="default name-filter"
  for q in $queries; do
    case $q in
      default) action=DescribeImages; body='{"Offset": 0, "Limit": 20}' ;;
      name-filter) action=DescribeImages; body='{"Filters": [{"Name": "image-name", "Values": ["bench-0004"]}], "Limit": 20}' ;;
      regions) action=DescribeRegions; body='{}' ;;
    esac
    .cache/venv/bin/python "$work/sign.py" "$action" "$body" "$addr" "$work/key.json" > "$work/req.lua"
    line=$(wrk -t2 -c16 -d"${DURATION}s" --latency -s "$work/req.lua" "http://$addr/" | grep '^BENCH')
    label=$q
    [ "$cache" = 0 ] && label="$q,no-cache"
    results+=("$engine $label $line")
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  done
done
echo
echo "| engine | query | requests/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
for r in "${results[@]}"; do
  set -- $r
  rps=${4#*=}; p50=${5#*=}; p99=${6#*=}; err=${7#*=}
  echo "| $1 | $2 | $rps | $p50 | $p99 | $err |"
done

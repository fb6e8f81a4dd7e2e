#!/usr/bin/env bash
# Load benchmark of the Tencent dialect: `ikon serve` (release build) with 10,000 images in
# the catalog (one small image published with --count: NAME-00001…, one stored copy), on
# SQLite and on PostgreSQL ($DATABASE_URL, or a throwaway server from
# scripts/start-postgres.sh when unset), driven by wrk (2 threads, 16 connections,
# --latency) with correctly signed TC3 requests: signed once with the Tencent SDK's own
# signing code (a signature stays valid for 5 minutes, so wrk can replay it; each query is
# signed just before its run). Every request must succeed: a non-200 status or an error
# envelope fails the benchmark. Prints requests/s and p50/p99 latency per engine and query.
# Usage: scripts/bench-api.sh [SECONDS] (default 20). Env: IKON_BENCH_IMAGES (10000),
# IKON_BIN (use this binary instead of building), IKON_BENCH_ENGINES ("sqlite postgres").
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
IMAGES=${IKON_BENCH_IMAGES:-10000}
ENGINES=${IKON_BENCH_ENGINES:-sqlite postgres}
export DEBIAN_FRONTEND=noninteractive
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v wrk >/dev/null || { echo "bench-api: wrk is required" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "bench-api: qemu-img is required" >&2; exit 1; }
bash scripts/install-api-clients.sh
PY=$PWD/.cache/venv/bin/python
if [ -n "${IKON_BIN:-}" ]; then
  IKON=$IKON_BIN
else
  cargo build -q --release -p ikon-cli --locked
  target=${CARGO_TARGET_DIR:-$PWD/target}
  IKON="$target/release/ikon"
fi
[ -x "$IKON" ] || { echo "bench-api: $IKON was not built" >&2; exit 1; }
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
work=$(mktemp -d /tmp/ikon-bench-api.XXXXXX)
pg_started=0
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ "$pg_started" = 1 ]; then bash scripts/stop-postgres.sh >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ " $ENGINES " == *" postgres "* ]] && [ -z "${DATABASE_URL:-}" ]; then
  export PGROOT=/tmp/ikon-pg-bench PGPORT=${IKON_BENCH_PGPORT:-55433}
  env_lines=$(bash scripts/start-postgres.sh) || { echo "start-postgres failed: an oracle the tests need is missing" >&2; exit 1; }
  eval "$env_lines"
  pg_started=1
fi
qemu-img create -q -f qcow2 "$work/tiny.qcow2" 64M

# sign.py ACTION JSON HOST KEYFILE EXPECTED_TOTAL -> a wrk Lua script with one signed POST,
# after checking once that the signed request succeeds (and finds EXPECTED_TOTAL images).
cat > "$work/sign.py" <<'PY'
import hashlib, json, sys, time, urllib.request
from tencentcloud.common.sign import Sign
action, body, host, keyfile, expect = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4], sys.argv[5]
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
with urllib.request.urlopen(urllib.request.Request("http://%s/" % host, data=body, headers=hdr), timeout=60) as r:
    resp = json.loads(r.read())["Response"]
if "Error" in resp or (expect != "-" and resp.get("TotalCount") != int(expect)):
    sys.exit("bench-api: the signed %s %s does not give TotalCount %s: %s" % (action, body.decode(), expect, str(resp)[:300]))
print('wrk.method = "POST"')
print('wrk.body = %s' % json.dumps(body.decode()))
for k, v in hdr.items():
    print('wrk.headers[%s] = %s' % (json.dumps(k), json.dumps(v)))
# Each wrk thread has its own Lua state: count errors per thread, sum them in done().
print('''
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) errors = 0 end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"Error"', 1, true) then errors = errors + 1 end
end
function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + t:get("errors") end
  e = e + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCH rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d requests=%d\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e, summary.requests))
end''')
PY

# Waits for the readiness line of the server writing to $1 (pid $server); prints host:port.
wait_ready() {
  local i
  for i in $(seq 600); do
    if grep -q '^ikon listening on ' "$1"; then sed -n 's#^ikon listening on http://##p' "$1"; return 0; fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench-api: ikon serve did not become ready:" >&2; cat "$work/serve.err" >&2; return 1
}

results=()
failed=0
for engine in $ENGINES; do
  data="$work/data-$engine"
  db=()
  if [ "$engine" = postgres ]; then
    name="bench_$RANDOM$RANDOM"
    psql "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $name"
    db=(--database "${DATABASE_URL%/*}/$name")
  fi
  "$IKON" admin --data-dir "$data" "${db[@]}" account create bench --output json > "$work/key.json"
  t0=$(date +%s%N)
  "$IKON" admin --data-dir "$data" "${db[@]}" image publish --region ap-guangzhou --name bench \
    --os-name "CentOS 7.9 64bit" --platform CentOS --count "$IMAGES" --output json "$work/tiny.qcow2" >/dev/null
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  echo "$engine: $IMAGES images published in $((ms / 1000)).$(printf %03d $((ms % 1000))) s" >&2
  for cache in 1 0; do
    # IKON_CATALOG_CACHE=0 turns the server's DescribeImages listing cache off (worst case).
    # One account replays one request far past the per-account rate limit: the limit is
    # lifted here (this measures the listing path; scripts/bench-ratelimit.py measures limits).
    printf '[api]\nrate_limit_per_second = 0\n' > "$work/bench.toml"
    IKON_CATALOG_CACHE=$cache "$IKON" serve --data-dir "$data" "${db[@]}" --config "$work/bench.toml" \
      --listen 127.0.0.1:0 > "$work/serve.out" 2>"$work/serve.err" &
    server=$!
    addr=$(wait_ready "$work/serve.out")
    queries="default name-filter"
    [ "$cache" = 1 ] && queries="default name-filter regions"
    for q in $queries; do
      case $q in
        default) action=DescribeImages; body='{"Offset": 0, "Limit": 20}'; expect=$IMAGES ;;
        name-filter) action=DescribeImages
          body='{"Filters": [{"Name": "image-name", "Values": ["bench-0004"]}], "Limit": 20}'
          expect=$(( IMAGES >= 49 ? 10 : (IMAGES >= 40 ? IMAGES - 39 : 0) )) ;;
        regions) action=DescribeRegions; body='{}'; expect=6 ;;
      esac
      "$PY" "$work/sign.py" "$action" "$body" "$addr" "$work/key.json" "$expect" > "$work/req.lua"
      line=$(wrk -t2 -c16 -d"${DURATION}s" --latency -s "$work/req.lua" "http://$addr/" | grep '^BENCH')
      label=$q
      [ "$cache" = 0 ] && label="$q,no-cache"
      results+=("$engine $label $line")
      case $line in *" errors=0 "*) ;; *) failed=1 ;; esac
    done
    kill "$server"; wait "$server" 2>/dev/null || true; server=
  done
done
echo
echo "DescribeImages over $IMAGES images; default = first page of 20, name-filter = Filters image-name"
echo "'bench-0004' (10 matches); wrk -t2 -c16 -d${DURATION}s on $(nproc) cores"
echo
echo "| engine | query | requests/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
for r in "${results[@]}"; do
  set -- $r
  rps=${4#*=}; p50=${5#*=}; p99=${6#*=}; err=${7#*=}
  echo "| $1 | $2 | $rps | $p50 | $p99 | $err |"
done
if [ "$failed" = 1 ]; then echo "bench-api: some requests failed (see errors)" >&2; exit 1; fi

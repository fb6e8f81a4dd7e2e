#!/usr/bin/env bash
# Measures one large ImportImage over HTTP on loopback (not a benchmark suite, no assertions):
# a SIZE_MIB file of random data served by Python's http.server on 127.0.0.1, imported with
# Force (it holds no OS) into an `ikon serve --allow-import-from 127.0.0.1` running under
# /usr/bin/time -v; prints the wall time from ImportImage to NORMAL, the throughput, and the
# server's peak RSS. Reading the file once with cat gives the raw read limit for comparison.
# Usage: scripts/measure-import.sh [SIZE_MIB=1024]   (IKON_BIN defaults to target/release/ikon)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
IKON_BIN=${IKON_BIN:-${CARGO_TARGET_DIR:-target}/release/ikon}
PY=${IKON_PY:-$PWD/.cache/venv/bin/python}
[ -x "$IKON_BIN" ] || { echo "measure-import: build ikon first ($IKON_BIN)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "measure-import: /usr/bin/time is required (apt-get install time)" >&2; exit 1; }
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
W=$(mktemp -d "${TMPDIR:-/tmp}/ikon-measure.XXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$W/big.raw"
t0=$(date +%s.%N); cat "$W/big.raw" > /dev/null; t1=$(date +%s.%N)
echo "raw read (cat, page cache): $(echo "$SIZE_MIB / ($t1 - $t0)" | bc -l | xargs printf '%.0f') MiB/s"
(cd "$W" && exec "$PY" -u -m http.server --bind 127.0.0.1 0 > "$W/http.log" 2>&1) & pids+=($!)
/usr/bin/time -v -o "$W/time.txt" "$IKON_BIN" serve --data-dir "$W/data" --listen 127.0.0.1:0 \
  --allow-import-from 127.0.0.1 > "$W/serve.out" 2> "$W/serve.err" & pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$W/serve.out" 2>/dev/null && grep -q "Serving HTTP" "$W/http.log" && break; sleep 0.2; done
addr=$(sed -n 's/^ikon listening on http:\/\/\(.*\)$/\1/p' "$W/serve.out")
hport=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$W/http.log" | head -1)
acc=$("$IKON_BIN" admin --data-dir "$W/data" account create measure --output json)
"$PY" - "$addr" "$hport" "$acc" "$SIZE_MIB" <<'PY'
import json, sys, time
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import cvm_client, models
addr, hport, acc = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = cvm_client.CvmClient(credential.Credential(acc["SecretId"], acc["SecretKey"]), "ap-guangzhou",
                         ClientProfile(httpProfile=HttpProfile(endpoint=addr, protocol="http", reqTimeout=600)))
r = models.ImportImageRequest()
r.ImageUrl, r.ImageName, r.OsType, r.OsVersion, r.Architecture, r.Force = \
    "http://127.0.0.1:%s/big.raw" % hport, "big", "Debian", "12", "x86_64", True
t0 = time.monotonic()
image_id = c.ImportImage(r).ImageId
while True:
    d = models.DescribeImagesRequest(); d.ImageIds = [image_id]
    img = c.DescribeImages(d).ImageSet[0]
    if img.ImageState != "IMPORTING":
        break
    time.sleep(0.2)
dt = time.monotonic() - t0
size = img.ImageSize
mib = int(sys.argv[4])
print("import: %s in %.1f s = %.0f MiB/s end to end (download, inspection, chunking) %s"
      % (img.ImageState, dt, mib / dt, img.ImageDescription[:200]))
PY
# Stop the server itself (the child of /usr/bin/time), so that time writes its report.
kill -TERM "$(pgrep -P "${pids[1]}")"; wait "${pids[1]}" 2>/dev/null || true
grep -E "Maximum resident|Elapsed" "$W/time.txt"
grep -o 'import download interrupted.*' "$W/serve.err" | head -3 || true

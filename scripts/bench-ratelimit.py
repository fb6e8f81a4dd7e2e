#!/usr/bin/env python3
"""Per-account rate limits under a flood: `ikon serve` (release build, default Tencent policy:
20 requests/s per account and action) while account A floods DescribeImages from THREADS
persistent connections as fast as they go, and account B sends DescribeImages at a steady
10 requests/s. Prints B's latency without and with the flood (p50 / p99 and their ratio), and
what A got: requests sent, admitted per second (never above the limit), refused with
RequestLimitExceeded. Nothing else should run on the machine.

Usage: .cache/venv/bin/python scripts/bench-ratelimit.py [--seconds 10] [--threads 8]
(scripts/install-api-clients.sh makes the venv; the Tencent SDK signs the requests)."""

import argparse
import hashlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from tencentcloud.common.sign import Sign

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = "2017-03-12"


def headers(acc, host, action, body):
    ts = int(time.time())
    canonical = "\n".join(["POST", "/", "", "content-type:application/json\nhost:%s\n" % host,
                           "content-type;host", hashlib.sha256(body).hexdigest()])
    date = time.strftime("%Y-%m-%d", time.gmtime(ts))
    scope = "%s/cvm/tc3_request" % date
    to_sign = "TC3-HMAC-SHA256\n%d\n%s\n%s" % (ts, scope, hashlib.sha256(canonical.encode()).hexdigest())
    sig = Sign.sign_tc3(acc["SecretKey"], date, "cvm", to_sign)
    return {"Content-Type": "application/json", "Host": host, "X-TC-Action": action, "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(ts), "X-TC-Region": "ap-guangzhou",
            "Authorization": "TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=content-type;host, Signature=%s"
                             % (acc["SecretId"], scope, sig)}


def call(conn, acc, host):
    body = b"{}"
    t = time.perf_counter()
    conn.request("POST", "/", body=body, headers=headers(acc, host, "DescribeImages", body))
    r = json.loads(conn.getresponse().read())["Response"]
    return time.perf_counter() - t, r.get("Error", {}).get("Code", "")


def steady(acc, host, seconds, out):
    conn = http.client.HTTPConnection(host, timeout=30)
    end = time.time() + seconds
    while time.time() < end:
        dt, code = call(conn, acc, host)
        if code:
            raise SystemExit("account B was refused: %s" % code)
        out.append(dt)
        time.sleep(max(0.0, 0.1 - dt))


def flood(acc, host, stop, counts, lock):
    conn = http.client.HTTPConnection(host, timeout=30)
    while not stop.is_set():
        _, code = call(conn, acc, host)
        with lock:
            counts[int(time.time())] = counts.get(int(time.time()), [0, 0])
            counts[int(time.time())][0 if not code else 1] += 1
            if code and code != "RequestLimitExceeded":
                raise SystemExit("unexpected error %s" % code)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=8)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "ikon-cli"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ikon = os.path.join(target, "release", "ikon")
    work = tempfile.mkdtemp(prefix="ikon-bench-rl-")
    data = os.path.join(work, "data")
    accs = [json.loads(subprocess.run([ikon, "admin", "--data-dir", data, "account", "create", n, "--output", "json"],
                                      check=True, capture_output=True, text=True).stdout) for n in ("flood", "steady")]
    srv = subprocess.Popen([ikon, "serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--nbd-listen", "off"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        host = None
        for line in srv.stdout:
            m = re.match(r"ikon listening on http://(\S+)", line)
            if m:
                host = m.group(1)
                break
        if not host:
            raise SystemExit("ikon serve did not start")
        base = []
        steady(accs[1], host, a.seconds, base)
        stop, lock, counts, loaded = threading.Event(), threading.Lock(), {}, []
        ts = [threading.Thread(target=flood, args=(accs[0], host, stop, counts, lock)) for _ in range(a.threads)]
        started = time.time()
        for t in ts:
            t.start()
        time.sleep(1)
        steady(accs[1], host, a.seconds, loaded)
        stop.set()
        for t in ts:
            t.join()
        flood_secs = time.time() - started
    finally:
        srv.terminate()
        srv.wait()
    admitted = sum(o for o, _ in counts.values())
    refused = sum(r for _, r in counts.values())
    # The server's windows are whole seconds: a flood of S seconds touches at most S + 1.
    print("account A (flood, %d connections, %.1f s): %d requests, %d admitted = %.1f per second over %d windows "
          "(limit 20 per window), %d refused with RequestLimitExceeded"
          % (a.threads, flood_secs, admitted + refused, admitted, admitted / flood_secs,
             int(flood_secs) + 1, refused))
    if admitted > 20 * (int(flood_secs) + 2):
        raise SystemExit("the limit was exceeded")
    print("account B alone:      p50 %.2f ms  p99 %.2f ms  (%d requests)" % (pct(base, .5), pct(base, .99), len(base)))
    print("account B under flood: p50 %.2f ms  p99 %.2f ms  (%d requests)" % (pct(loaded, .5), pct(loaded, .99),
                                                                               len(loaded)))
    print("ratio under flood / alone: p50 %.2fx  p99 %.2fx" % (pct(loaded, .5) / pct(base, .5),
                                                              pct(loaded, .99) / pct(base, .99)))


if __name__ == "__main__":
    sys.exit(main())

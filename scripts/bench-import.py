#!/usr/bin/env python3
"""Import and cross-region copy benchmark (measured, never asserted).

Builds a SIZE MiB disk of dense pseudo-random data (A) and a copy of it with 1 % of its MiBs
rewritten (B), serves both from Python's http.server on 127.0.0.1, and drives a release
`ikon serve` (SQLite, two regions with their own local chunk stores, run under
/usr/bin/time -v for its peak memory) with Tencent's Python SDK:

  1. the limits: `cat A` from the page cache, `curl` of A's URL (the HTTP limit: what the
     source can deliver, the ceiling of any import from it), and `dd conv=fsync` of A to the
     same disk (the write limit: an import of new data must store it durably);
  2. ImportImage of A from its URL, timed from the call to NORMAL (download, inspection,
     chunking, hashing and storing) and compared with both limits;
  3. SyncImages of A to ap-beijing (everything travels), then ImportImage of B and
     SyncImages of B to ap-beijing: bytes that arrived in the destination store and the time
     from the call until the copy is NORMAL (only B's 1 % should travel).

Prints markdown tables. Usage:
  python3 scripts/bench-import.py [--size-mib 4096] [--realistic] [--work DIR] [--ikon BIN]
IKON_BIN or --ikon default to target/release/ikon (built with `cargo build --release` if
missing); the SDK comes from .cache/venv (scripts/install-api-clients.sh).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(ROOT, ".cache", "venv", "bin", "python")


def reexec_in_venv():
    """The SDK lives in the project's virtualenv; run there."""
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".cache", "venv")):
        if not os.path.exists(VENV_PY):
            sys.exit("bench-import: run scripts/install-api-clients.sh first (needs .cache/venv)")
        os.execv(VENV_PY, [VENV_PY] + sys.argv)


def make_images(work, size_mib, realistic):
    """A: pseudo-random data (realistic: every other 16 MiB run all zeros, as in an OS disk
    that is about half full); B: A with every 100th MiB rewritten (1 %)."""
    a, b = os.path.join(work, "a.raw"), os.path.join(work, "b.raw")
    rnd = random.Random(1)
    zeros = bytes(MIB)
    with open(a, "wb") as f:
        for i in range(size_mib):
            f.write(zeros if realistic and (i // 16) % 2 else rnd.randbytes(MIB))
    shutil.copyfile(a, b)
    changed = 0
    with open(b, "r+b") as f:
        for i in range(50, size_mib, 100):
            f.seek(i * MIB)
            f.write(rnd.randbytes(MIB))
            changed += 1
    return a, b, changed


def timed(cmd):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def store_bytes(d):
    """Bytes of the chunk objects under a local store directory."""
    total = 0
    for root, _, files in os.walk(os.path.join(d, "chunks")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if not f.startswith("."))
    return total


def import_phases(db):
    """The import tasks' own account of their time (download, inspection, storing), oldest
    first, from the catalog."""
    import sqlite3
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT result FROM tasks WHERE kind = 'import' ORDER BY created_at").fetchall()
    return [json.loads(r[0]) for r in rows if r[0]]


def wait_for(pattern, path, proc, what, deadline=60):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if os.path.exists(path):
            m = re.search(pattern, open(path, errors="replace").read())
            if m:
                return m
        if proc.poll() is not None:
            sys.exit("bench-import: %s exited: %s" % (what, open(path, errors="replace").read()))
        time.sleep(0.1)
    sys.exit("bench-import: %s did not start" % what)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=4096)
    ap.add_argument("--work", default=None, help="scratch directory (default: a new one in /tmp)")
    ap.add_argument("--ikon", default=os.environ.get("IKON_BIN"))
    ap.add_argument("--realistic", action="store_true",
                    help="half the disk zeros (16 MiB runs) instead of dense random data")
    args = ap.parse_args()
    ikon = args.ikon or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                     "release", "ikon")
    if not os.path.exists(ikon):
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "ikon-cli"],
                       check=True, cwd=ROOT)
    for tool in ("curl", "/usr/bin/time"):
        if not shutil.which(tool):
            sys.exit("bench-import: %s is required" % tool)
    for k in [k for k in os.environ if k.lower().endswith("_proxy")]:
        del os.environ[k]
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.cvm.v20170312 import cvm_client, models

    work = tempfile.mkdtemp(prefix="ikon-bench-import-", dir=args.work)
    procs = []
    try:
        print("building %d MiB images in %s ..." % (args.size_mib, work), flush=True)
        a, b, changed = make_images(work, args.size_mib, args.realistic)
        size = args.size_mib * MIB

        log = os.path.join(work, "http.log")
        http = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1",
                                 "0"], cwd=work, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        procs.append(http)
        hport = wait_for(r"port (\d+)", log, http, "http.server").group(1)
        url = "http://127.0.0.1:%s/" % hport

        subprocess.run(["cat", a], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        cat_s = min(timed(["cat", a]) for _ in range(2))
        http_s = min(timed(["curl", "-sf", "-o", "/dev/null", url + "a.raw"]) for _ in range(2))
        # What an import of new data must also do: write it durably (here: A, from the page
        # cache, to a file on the data directory's file system, fsynced).
        write_s = timed(["dd", "if=" + a, "of=" + os.path.join(work, "write-limit"), "bs=4M", "conv=fsync",
                         "status=none"])
        os.unlink(os.path.join(work, "write-limit"))

        beijing = os.path.join(work, "beijing-store")
        conf = os.path.join(work, "ikon.toml")
        with open(conf, "w") as f:
            f.write("[limits]\ndaily_operations = 100\n\n[import]\nallow = [\"127.0.0.1\"]\n\n"
                    "[[regions]]\nname = \"ap-guangzhou\"\n[[regions.zones]]\nname = \"ap-guangzhou-3\"\n\n"
                    "[[regions]]\nname = \"ap-beijing\"\nstore = \"%s\"\n"
                    "[[regions.zones]]\nname = \"ap-beijing-3\"\n" % beijing)
        data = os.path.join(work, "data")
        out, err, tv = (os.path.join(work, n) for n in ("serve.out", "serve.err", "time.txt"))
        serve = subprocess.Popen(["/usr/bin/time", "-v", "-o", tv, ikon, "serve", "--data-dir", data,
                                  "--config", conf, "--listen", "127.0.0.1:0", "--nbd-listen", "off"],
                                 stdout=open(out, "w"), stderr=open(err, "w"))
        procs.append(serve)
        addr = wait_for(r"listening on http://(\S+)", out, serve, "ikon serve").group(1)
        acc = json.loads(subprocess.run([ikon, "admin", "--data-dir", data, "--config", conf,
                                         "account", "create", "bench", "--output", "json"],
                                        check=True, capture_output=True, text=True).stdout)

        def client(region):
            return cvm_client.CvmClient(
                credential.Credential(acc["SecretId"], acc["SecretKey"]), region,
                ClientProfile(httpProfile=HttpProfile(endpoint=addr, protocol="http", reqTimeout=600)))
        gz, bj = client("ap-guangzhou"), client("ap-beijing")

        def state(c, image_id):
            d = models.DescribeImagesRequest()
            d.ImageIds = [image_id]
            s = c.DescribeImages(d).ImageSet
            return s[0] if s else None

        def wait(c, image_id, busy):
            while True:
                img = state(c, image_id)
                if img is not None and img.ImageState not in busy:
                    return img
                time.sleep(0.1)

        def import_(name):
            r = models.ImportImageRequest()
            r.ImageUrl, r.ImageName, r.OsType, r.OsVersion, r.Architecture, r.Force = \
                url + name, name, "Debian", "12", "x86_64", True
            t0 = time.monotonic()
            image_id = gz.ImportImage(r).ImageId
            img = wait(gz, image_id, ("IMPORTING",))
            dt = time.monotonic() - t0
            if img.ImageState != "NORMAL":
                sys.exit("bench-import: import of %s ended %s: %s"
                         % (name, img.ImageState, img.ImageDescription))
            return image_id, dt

        def sync(image_id):
            r = models.SyncImagesRequest()
            r.ImageIds, r.DestinationRegions, r.ImageSetRequired = [image_id], ["ap-beijing"], True
            before = store_bytes(beijing) if os.path.isdir(beijing) else 0
            t0 = time.monotonic()
            copy = gz.SyncImages(r).ImageSet[0].ImageId
            img = wait(bj, copy, ("CREATING", "SYNCING"))
            dt = time.monotonic() - t0
            if img.ImageState != "NORMAL":
                sys.exit("bench-import: copy of %s ended %s" % (image_id, img.ImageState))
            wait(gz, image_id, ("SYNCING",))
            return store_bytes(beijing) - before, dt

        print("importing ...", flush=True)
        ia, import_s = import_("a.raw")
        full_bytes, full_s = sync(ia)
        ib, import_b_s = import_("b.raw")
        diff_bytes, diff_s = sync(ib)
        phases = import_phases(os.path.join(data, "catalog.db"))
    finally:
        for p in reversed(procs):
            if p is procs[-1] and p.poll() is None and len(procs) > 1:
                # Stop the server itself (the child of /usr/bin/time) so time writes its report.
                kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
                for k in kids.stdout.split():
                    os.kill(int(k), signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
            elif p.poll() is None:
                p.kill()
                p.wait()
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(tv).read()).group(1))
    shutil.rmtree(work, ignore_errors=True)

    mibs = lambda secs: args.size_mib / secs  # noqa: E731
    print()
    print("ikon %s; %d MiB %s disk, %d MiB of it (%.1f %%) rewritten in the second; "
          "%d cores" % (subprocess.run([ikon, "--version"], capture_output=True, text=True).stdout.strip(),
                        args.size_mib, "realistic (half zeros)" if args.realistic else "dense random",
                        changed, 100.0 * changed / args.size_mib, os.cpu_count()))
    print()
    print("| measurement | seconds | MiB/s | vs HTTP limit | vs cat |")
    print("|---|---|---|---|---|")
    print("| read limit: cat of the file (page cache) | %.2f | %.0f | | 1.00 |" % (cat_s, mibs(cat_s)))
    print("| read limit: curl of the URL (HTTP, loopback) | %.2f | %.0f | 1.00 | %.2f |"
          % (http_s, mibs(http_s), cat_s / http_s))
    print("| write limit: dd conv=fsync of the file to the same disk | %.2f | %.0f | %.2f | %.2f |"
          % (write_s, mibs(write_s), http_s / write_s, cat_s / write_s))
    for label, s in (("ImportImage A, call to NORMAL", import_s), ("ImportImage B (mostly known chunks)",
                                                                    import_b_s)):
        print("| %s | %.2f | %.0f | %.2f | %.2f |" % (label, s, mibs(s), http_s / s, cat_s / s))
    print()
    bound = max(http_s, write_s)
    print("import A against the slower of the two limits (%s): %.2f; import B against the HTTP limit: %.2f"
          % ("disk writes" if write_s > http_s else "HTTP", bound / import_s, http_s / import_b_s))
    print()
    print("| import | download s | inspection s | storing after the download s | chunks stored during the download |")
    print("|---|---|---|---|---|")
    for name, ph in zip(("A", "B"), phases):
        print("| %s | %.2f | %.2f | %.2f | %s of %d |" % (
            name, ph.get("download_ms", 0) / 1000, ph.get("inspect_ms", 0) / 1000,
            ph.get("store_ms", 0) / 1000, ph.get("chunks_stored_during_download", "?"),
            args.size_mib * MIB // (1 << 20)))
    print()
    print("| copy to ap-beijing | seconds | MiB arrived in the destination store | share of the image |")
    print("|---|---|---|---|")
    print("| A (destination holds nothing) | %.2f | %.1f | %.1f %% |"
          % (full_s, full_bytes / MIB, 100.0 * full_bytes / size))
    print("| B (1 %% different from A, which is there) | %.2f | %.1f | %.2f %% (rewritten: %d MiB) |"
          % (diff_s, diff_bytes / MIB, 100.0 * diff_bytes / size, changed))
    print()
    print("peak RSS of ikon serve over the whole run: %.1f MiB" % (rss_kib / 1024))


if __name__ == "__main__":
    reexec_in_venv()
    main()

#!/usr/bin/env python3
"""Crash trials for `ikon serve` (driven by scripts/crash-trials.sh).

Each trial starts a random mix of workloads against one `ikon serve` (SQLite catalog, local
chunk stores: the data directory's, and a directory of its own for ap-beijing so that copies
there send chunks) — `ikon admin image publish`, ImportImage from HTTP (a local server with
Range support, often throttled so the download spans the kill), `ikon image import` (upload),
SyncImages, ExportImages (to an `[export] dir` bucket), CreateImage after NBD writes,
qemu-io writes with flushes over NBD, `ikon admin gc`, DeleteImages — and kill -9s the server
(in most trials with every client process still running: publish, import, gc) either at a
random moment or at a chosen fragile one: a task of a given kind RUNNING, an upload
streaming, a collection announced in the store, an NBD write in flight, or 0.5-8 ms after a
call that writes more than one catalog statement was sent. Sometimes it kills the server a
second time while the runner retries an interrupted task. Then it restarts the server, lets
the work settle and checks:

- every image is NORMAL with the content of its source (read back through Ikon: RunInstances
  and `qemu-img compare` of the source with the instance's NBD export), or in a failed state
  that DeleteImages removes; anything else is "half-made" (an image left IMPORTING, CREATING
  or SYNCING with no task to finish it, NORMAL with other content), and so is acknowledged
  work that is gone (a publish that printed its ImageId, an import, copy or image seen NORMAL,
  an export file seen complete, a deletion that succeeded);
- no task is still PENDING or RUNNING once every lease (30 s for the runner, 60 s for a
  publisher) and the killed server's write sessions (60 s) have run out and the retries had
  their time ("stuck"); the service takes new work: a flushed NBD write and a publication
  finish within 60 s (else "stuck" too);
- every NBD write whose qemu-io run (write + flush) completed before the kill reads back
  after the restart, and nothing else on the disk changed ("lost writes");
- a finished export is a file identical to its source, a failed one left nothing, and nothing
  is left behind that no one will remove: spool files once every task ended, partial export
  files in the bucket, snapshots of deleted images, disks of terminated instances, quota
  units of images that are gone ("leftover": a failure, not in the summary's columns);
- an import, copy, export or creation the kill interrupted does not end FAILED: it has
  attempts to spare (a trial kills at most twice) and the runner's handlers must be
  idempotent ("retry": a failure, not in the summary's columns; a publication, which cannot
  be resumed, may fail);
- after `ikon admin gc`, `ikon admin fsck --output json` is clean: no orphan chunk, no
  missing or damaged chunk or manifest ("orphans after gc").

State accumulates across the trials of a lane, as in production: one data directory (one
catalog, one set of chunk stores) per lane, images kept and re-read by later trials, old
images deleted by later trials while garbage collection runs. After a trial that found a
problem the lane starts over on a fresh data directory (the old one is kept with --keep), so
a problem is counted by the trial that caused it and not again by every later one. Lanes
(--jobs) run side by side, each with its own server: most of a trial is waiting for leases
and sessions to run out. Trial i runs in lane (i-1) % jobs with the random choices of
(seed, i): the same --seed and --jobs replay the same mixes and kill moments (the timing of
the processes themselves varies).

The last line is `trials N, failures F, half-made H, stuck S, lost writes L, orphans after
gc O` (F counts trials with any problem); the exit status is 1 when any of them is non-zero.
"""

import argparse
import functools
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

MIB = 1 << 20
GIB = 1 << 30
SECTOR = 4096
# Leases as `ikon serve` and `ikon admin image publish` take them (crates/ikon-cli/src/
# server.rs `task_runner(30)`, crates/ikon-service/src/publish.rs `PUBLISH_LEASE`), and the
# store's write-session lifetime (crates/ikon-store/src/gc.rs `SESSION_TTL`): a killed
# process's lease and sessions run out within these.
RUNNER_LEASE = 30
PUBLISH_LEASE = 60
SESSION_TTL = 60
# A task still PENDING or RUNNING this long after the kill is stuck: every lease has run out
# (60 s at most), the runner reclaimed the task and a retry had ample time (each retry of
# these small jobs takes seconds; a garbage collection that survived the kill may hold
# writers until the killed server's sessions expire, another 60 s at most).
STUCK_AFTER = PUBLISH_LEASE + SESSION_TTL + 60
GZ, BJ, SH = "ap-guangzhou", "ap-beijing", "ap-shanghai"
ZONE = {GZ: "ap-guangzhou-3", BJ: "ap-beijing-3", SH: "ap-shanghai-2"}
FAILED_STATES = ("IMPORTFAILED", "CREATEFAILED")
WORKLOADS = ("publish", "http-import", "upload-import", "sync", "export", "create-image", "nbd-writes", "gc",
             "delete")
# How many of each a trial may start (a random subset of these kinds, each 1..max times).
MAX_EACH = {"publish": 2, "http-import": 2, "upload-import": 2, "sync": 1, "export": 2, "create-image": 1,
            "nbd-writes": 2, "gc": 1, "delete": 1}
REGISTRY_CAP = 24  # images a lane keeps (older ones are deleted by later trials)
TARGET_WAIT = 8.0  # a targeted kill waits at most this long for its moment
PROBE_WAIT = 60    # an NBD flush and a publication after the trial settled must finish within this (s)

harness = None  # tests/e2e/harness.py, imported in main() once IKON_BIN is set
IKON = None
PRINT_LOCK = threading.Lock()


def say(msg):
    with PRINT_LOCK:
        print(msg, flush=True)


def die_with_parent():
    """In a child before exec: SIGKILL it if this driver dies, so nothing outlives a run."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class TrialError(Exception):
    """The trial cannot go on (e.g. the server did not restart)."""


# ---------------------------------------------------------------------------------------
# One `ikon serve` over one data directory


class Node:
    def __init__(self, root, config):
        self.root = root
        self.data = os.path.join(root, "data")
        self.config = os.path.join(root, "ikon.toml")
        with open(self.config, "w") as f:
            f.write(config)
        self.log_path = os.path.join(root, "serve.log")
        self.proc = None
        self.addr = self.nbd = None
        self.scheme = "http"
        self.ca = None
        self.admin_key = None
        self.starts = 0

    @property
    def url(self):
        return "http://" + self.addr

    def start(self, timeout=120):
        """Starts `ikon serve` and waits for its readiness lines; False if it does not come up."""
        self.addr = self.nbd = None
        ready = threading.Event()
        log = open(self.log_path, "a")
        log.write("==== start %d at %s\n" % (self.starts + 1, time.strftime("%H:%M:%S")))
        log.flush()
        self.proc = subprocess.Popen(
            [IKON, "serve", "--data-dir", self.data, "--listen", "127.0.0.1:0", "--nbd-listen", "127.0.0.1:0",
             "--config", self.config, "--allow-import-from", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=die_with_parent)
        log.close()
        self.starts += 1
        lines = []

        def read(proc):
            for line in proc.stdout:
                lines.append(line)
                with open(self.log_path, "a") as f:
                    f.write("[stdout] " + line)
                m = re.search(r"platform administrator: SecretId=(\S+) SecretKey=(\S+)", line)
                if m:
                    self.admin_key = {"SecretId": m.group(1), "SecretKey": m.group(2)}
                m = re.match(r"ikon nbd listening on nbd://(\S+)", line)
                if m:
                    self.nbd = m.group(1)
                m = re.match(r"ikon listening on http://(\S+)", line)
                if m:
                    self.addr = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, args=(self.proc,), daemon=True).start()
        ready.wait(timeout)
        return bool(self.addr and self.nbd and self.proc.poll() is None)

    def kill(self):
        """kill -9 of the server (its whole process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def admin_cmd(self, *args):
        return [IKON, "admin", "--data-dir", self.data, "--config", self.config] + [str(a) for a in args]

    def admin(self, *args, timeout=600):
        return subprocess.run(self.admin_cmd(*args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)

    def db(self):
        c = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.data, "catalog.db"), uri=True, timeout=30)
        c.row_factory = sqlite3.Row
        return c

    def query(self, sql, *params):
        for attempt in range(20):
            try:
                c = self.db()
                try:
                    return [dict(r) for r in c.execute(sql, params).fetchall()]
                finally:
                    c.close()
            except sqlite3.OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.2)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------
# The HTTP source for ImportImage: serves the run's directory with Range support (so Ikon's
# resumed downloads are exercised) and an optional rate limit (?rate=BYTES_PER_SECOND) that
# stretches a download over the kill window.


class SourceHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        path, _, query = self.path.partition("?")
        rate = 0
        for kv in query.split("&"):
            if kv.startswith("rate="):
                rate = int(kv[5:])
        fs = self.translate_path(path)
        try:
            f = open(fs, "rb")
        except OSError:
            self.send_error(404)
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            lm = self.date_time_string(st.st_mtime)
            etag = '"%x-%x"' % (int(st.st_mtime_ns), size)
            start, end, partial = 0, size - 1, False
            rng = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if rng and (not if_range or if_range in (lm, etag)):
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                if m and int(m.group(1)) < size:
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                    partial = True
            self.send_response(206 if partial else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Last-Modified", lm)
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if partial:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            self.end_headers()
            f.seek(start)
            left = end - start + 1
            piece = 64 << 10
            t0 = time.monotonic()
            sent = 0
            try:
                while left > 0:
                    b = f.read(min(piece, left))
                    if not b:
                        break
                    self.wfile.write(b)
                    left -= len(b)
                    sent += len(b)
                    if rate:
                        ahead = sent / rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
            except (BrokenPipeError, ConnectionResetError):
                pass


def start_http(root):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SourceHandler, directory=root))
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---------------------------------------------------------------------------------------
# Sources and models. A model is a raw file holding the guest content an image or disk must
# have (sparse; an image or disk longer than its model must read zeros past its end).


POOL = 16  # shared 1 MiB blocks: sources repeat them, so images share chunks across trials


def pool_block(k):
    return random.Random("ikon-crash-pool-%d" % k).randbytes(MIB)


def make_source(rng, dirpath, name):
    """A raw model (16-64 MiB, 2-8 MiB of data: blocks from the shared pool, unique blocks and
    an unaligned run) and the file to submit (raw, qcow2 or vmdk made by qemu-img)."""
    size = rng.choice([16, 24, 32, 48, 64]) * MIB
    model = os.path.join(dirpath, name + ".model.raw")
    with open(model, "wb") as f:
        f.truncate(size)
        slots = rng.sample(range(size // MIB), rng.randint(2, min(8, size // MIB - 1)))
        for s in slots:
            f.seek(s * MIB)
            f.write(pool_block(rng.randrange(POOL)) if rng.random() < 0.5 else rng.randbytes(MIB))
        off = rng.randrange(size // SECTOR - 64) * SECTOR
        f.seek(off)
        f.write(rng.randbytes(rng.randint(1, 64) * SECTOR))
    fmt = rng.choice(["raw", "qcow2", "qcow2", "vmdk"])
    if fmt == "raw":
        return model, model, size, fmt
    out = os.path.join(dirpath, "%s.%s" % (name, fmt))
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, model, out], check=True)
    return model, out, size, fmt


def copy_model(src, dst):
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)


def apply_write(model, w):
    """Applies one NBD write (offset, length, pattern byte or None for write-zeroes)."""
    off, length, pat = w
    with open(model, "r+b") as f:
        if f.seek(0, 2) < off + length:
            f.truncate(off + length)
        f.seek(off)
        f.write(bytes([pat or 0]) * length)


def qemu_compare(model, target, fmt="raw"):
    p = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", fmt, model, target], capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).strip()


def nbd_url(node, acc, disk_id):
    token = hmac.new(acc["SecretKey"].encode(), ("ikon-nbd-v1:" + disk_id).encode(), hashlib.sha256).hexdigest()
    return "nbd://%s/%s/%s/%s" % (node.nbd, disk_id, acc["SecretId"], token)


# ---------------------------------------------------------------------------------------
# The API (Tencent's own SDK, generic client)


class Api:
    def __init__(self, node, acc):
        self.node, self.acc = node, acc
        self.clients = {}

    def __call__(self, action, region=GZ, **params):
        c = self.clients.get(region)
        if c is None:
            c = self.clients[region] = harness.common(self.node, self.acc, region)
        return c.call_json(action, params)["Response"]

    def image(self, image_id, region=GZ):
        r = self("DescribeImages", region, ImageIds=[image_id])
        return r["ImageSet"][0] if r.get("ImageSet") else None


def api_code(e):
    return getattr(e, "code", None) or type(e).__name__


# ---------------------------------------------------------------------------------------
# What a trial expects


class Obj:
    """An image the lane knows: (owner, region, name) -> the model its content must equal."""

    def __init__(self, owner, region, name, model, vsize, origin):
        self.owner, self.region, self.name = owner, region, name
        self.model, self.vsize, self.origin = model, vsize, origin
        self.image_id = None
        self.acked = None       # why it must exist NORMAL (e.g. "publish printed img-x")
        self.seen_failed = None  # a failed state seen before the kill without a crash
        self.trial = None

    def key(self):
        return (self.owner, self.region, self.name)

    def __repr__(self):
        return "%s %s/%s (%s)" % (self.image_id or "?", self.region, self.name, self.origin)


class Disk:
    """An instance disk written over NBD: its base model and the writes sent to it."""

    def __init__(self, instance_id, disk_id, base_model, size):
        self.instance_id, self.disk_id, self.base, self.size = instance_id, disk_id, base_model, size
        self.done = []        # writes whose qemu-io (write + flush) completed
        self.inflight = None  # the write being sent when the server died
        self.lock = threading.Lock()


class Export:
    def __init__(self, prefix, src, fmt):
        self.prefix, self.src, self.fmt = prefix, src, fmt
        self.keys = None
        self.acked = False


class Trial:
    def __init__(self, n, rng):
        self.n, self.rng = n, rng
        self.objs = []          # images this trial may have made
        self.disks = []
        self.exports = []
        self.deletes = []       # (Obj, acked)
        self.busy = []          # registry images this trial's workloads use (sync sources, exports)
        self.clients = []       # client processes (killable)
        self.errors = []        # unexpected: API errors and client failures before the kill
        self.problems = []      # what the checks found
        self.half_made = self.stuck = self.lost = self.orphans = 0
        self.kill_at = None
        self.killed = threading.Event()
        self.fired = threading.Event()
        self.target = None
        self.lock = threading.Lock()
        self.notes = []
        self.progress = {}
        self.inconsistent = []  # interrupted tasks FAILED whose image is NORMAL (noted)
        self.failed_tasks = []  # interrupted tasks that ended FAILED (their images failed: allowed)

    def before_kill(self):
        return not self.killed.is_set()

    def trigger(self, name):
        """A workload is about to do `name`: fires a kill aimed at that moment."""
        if self.target == name:
            self.fired.set()

    def unexpected(self, what):
        with self.lock:
            if self.before_kill():
                self.errors.append(what)

    def popen(self, cmd):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             text=True, start_new_session=True, preexec_fn=die_with_parent)
        with self.lock:
            self.clients.append(p)
        return p

    def problem(self, kind, msg):
        self.problems.append("%s: %s" % (kind, msg))


# ---------------------------------------------------------------------------------------
# A lane: one data directory, one server, the images it holds


def config_text(lane_root):
    lines = ["[limits]", "custom_images_per_region = 100000", "daily_operations = 1000000",
             "instances_per_region = 100000", "snapshots_per_region = 100000", "",
             "[api]", "rate_limit_per_second = 0", "",
             "[export]", 'dir = "%s"' % os.path.join(lane_root, "exports"), ""]
    for region, zones in ((GZ, ["ap-guangzhou-3", "ap-guangzhou-4"]), (BJ, ["ap-beijing-3"]),
                          (SH, ["ap-shanghai-2"])):
        lines += ["[[regions]]", 'name = "%s"' % region, "copy_allowed = true"]
        if region == BJ:  # a region with a store of its own: copies there send chunks
            lines.append('store = "%s"' % os.path.join(lane_root, "beijing-store"))
        for z in zones:
            lines += ["[[regions.zones]]", 'name = "%s"' % z]
        lines.append("")
    return "\n".join(lines)


class Lane:
    def __init__(self, idx, run_root, http_port, keep):
        self.idx = idx
        self.run_root = run_root
        self.http_port = http_port
        self.keep = keep
        self.generation = 0
        self.node = None
        self.kept = []

    def fresh(self):
        """A new data directory (and server) for this lane."""
        if self.node is not None:
            self.node.kill()
            if self.keep:
                self.kept.append(self.root)
            else:
                shutil.rmtree(self.root, ignore_errors=True)
        self.generation += 1
        self.root = os.path.join(self.run_root, "lane%d.%d" % (self.idx, self.generation))
        os.makedirs(os.path.join(self.root, "exports", "bkt"))
        os.makedirs(os.path.join(self.root, "work"))
        self.node = Node(self.root, config_text(self.root))
        if not self.node.start():
            raise TrialError("ikon serve did not start on a fresh data dir:\n" + self.node.log_tail())
        if not self.node.admin_key:
            raise TrialError("the first start did not print the administrator's keys")
        p = self.node.admin("account", "create", "crash-%d" % self.idx, "--output", "json")
        if p.returncode != 0:
            raise TrialError("account create failed: " + p.stderr)
        self.acc = json.loads(p.stdout)
        self.registry = []   # Obj: NORMAL images with verified content
        self.seq = 0

    def api(self, admin=False):
        return Api(self.node, self.node.admin_key if admin else self.acc)

    def name(self, trial, what):
        self.seq += 1
        return "ct%d-t%d-%s-%d" % (self.idx, trial.n, what, self.seq)

    def work(self, *parts):
        return os.path.join(self.root, "work", *parts)

    def export_dir(self):
        return os.path.join(self.root, "exports", "bkt")

    def spool(self):
        return os.path.join(self.node.data, "spool")

    def publish_now(self, trial, account=True):
        """Publishes a new source synchronously (setup, before the kill window)."""
        name = self.name(trial, "base")
        model, path, size, _ = make_source(trial.rng, self.work(), name)
        args = ["image", "publish", "--region", GZ, "--name", name, "--output", "json"]
        if account:
            args += ["--account", self.acc["AccountId"]]
        p = self.node.admin(*(args + [path]))
        if p.returncode != 0:
            raise TrialError("setup publish failed: %s%s" % (p.stdout, p.stderr))
        o = Obj(self.acc["AccountId"] if account else "", GZ, name, model, size, "publish")
        o.image_id = json.loads(p.stdout)["ImageId"]
        o.trial = trial.n
        self.registry.append(o)
        return o


# ---------------------------------------------------------------------------------------
# Workloads. Each runs in a thread until done or until the server dies; everything it learns
# (images it may have made, what was acknowledged) goes into the Trial.


def wait_image(trial, api, image_id, region, pending, obj=None, timeout=120):
    """Polls an image until it leaves the `pending` states (before the kill); returns it."""
    end = time.monotonic() + timeout
    while trial.before_kill() and time.monotonic() < end:
        img = api.image(image_id, region)
        if img is None:
            trial.unexpected("image %s disappeared before the kill" % image_id)
            return None
        if img["ImageState"] not in pending:
            return img
        time.sleep(0.15)
    return None


def w_publish(lane, trial, api, rng):
    public = rng.random() < 0.3
    name = lane.name(trial, "pub")
    model, path, size, _ = make_source(rng, lane.work(), name)
    o = Obj("" if public else lane.acc["AccountId"], GZ, name, model, size, "publish")
    trial.objs.append(o)
    args = ["image", "publish", "--region", GZ, "--name", name, "--output", "json"]
    if not public:
        args += ["--account", lane.acc["AccountId"]]
    p = trial.popen(lane.node.admin_cmd(*(args + [path])))
    out, err = p.communicate()
    if p.returncode == 0:
        o.image_id = json.loads(out)["ImageId"]
        o.acked = "publish printed %s" % o.image_id
    elif p.returncode != -signal.SIGKILL:
        trial.unexpected("publish exited %s: %s" % (p.returncode, err.strip()[-300:]))


def w_http_import(lane, trial, api, rng):
    name = lane.name(trial, "http")
    model, path, size, _ = make_source(rng, lane.work(), name)
    # Unthrottled, or stretched over 0.3-2 s (a raw source is sent whole, zeros included).
    rate = 0 if rng.random() < 0.3 else int(os.path.getsize(path) / rng.uniform(0.3, 2.0))
    url = "http://127.0.0.1:%d/%s%s" % (lane.http_port, os.path.relpath(path, lane.run_root),
                                        "?rate=%d" % rate if rate else "")
    o = Obj(lane.acc["AccountId"], GZ, name, model, size, "http-import")
    trial.objs.append(o)
    trial.trigger("ImportImage call")
    r = api("ImportImage", ImageUrl=url, ImageName=name, OsType="Debian", OsVersion="12", Architecture="x86_64",
            Force=True)
    o.image_id = r["ImageId"]
    img = wait_image(trial, api, o.image_id, GZ, ("IMPORTING",), o)
    if img and img["ImageState"] == "NORMAL":
        o.acked = "seen NORMAL before the kill"
    elif img:
        o.seen_failed = img["ImageState"]
        trial.unexpected("import %s became %s without a crash: %s" % (o.image_id, img["ImageState"],
                                                                        img.get("ImageDescription", "")[:300]))


def w_upload_import(lane, trial, api, rng):
    name = lane.name(trial, "upl")
    model, path, size, _ = make_source(rng, lane.work(), name)
    o = Obj(lane.acc["AccountId"], GZ, name, model, size, "upload-import")
    trial.objs.append(o)
    p = trial.popen([IKON, "image", "import", path, "--endpoint", lane.node.url, "--secret-id",
                     lane.acc["SecretId"], "--secret-key", lane.acc["SecretKey"], "--name", name, "--os-type",
                     "Debian", "--os-version", "12", "--force", "--wait", "--output", "json"])
    out, err = p.communicate()
    if p.returncode == 0:
        r = json.loads(out)
        o.image_id = r["ImageId"]
        if r.get("ImageState") == "NORMAL":
            o.acked = "ikon image import --wait printed NORMAL"
    elif p.returncode != -signal.SIGKILL and trial.before_kill():
        trial.unexpected("ikon image import exited %s: %s%s" % (p.returncode, out.strip()[-300:],
                                                                 err.strip()[-300:]))


def w_sync(lane, trial, api, rng, src):
    dests = rng.choice([[BJ], [SH], [BJ, SH]])
    name = lane.name(trial, "copy")
    copies = []
    for region in dests:
        o = Obj(src.owner, region, name, src.model, src.vsize, "sync of %s" % src.image_id)
        trial.objs.append(o)
        copies.append(o)
    trial.trigger("SyncImages call")
    r = api("SyncImages", ImageIds=[src.image_id], DestinationRegions=dests, ImageName=name,
            ImageSetRequired=True)
    for item in r["ImageSet"]:
        for o in copies:
            if o.region == item["Region"]:
                o.image_id = item["ImageId"]
    for o in copies:
        img = wait_image(trial, api, o.image_id, o.region, ("CREATING",))
        if img and img["ImageState"] == "NORMAL":
            o.acked = "copy seen NORMAL before the kill"
        elif img:
            o.seen_failed = img["ImageState"]
            trial.unexpected("copy %s became %s without a crash" % (o.image_id, img["ImageState"]))


def w_export(lane, trial, api, rng, src):
    fmt = rng.choice(["RAW", "QCOW2", "VMDK", "VHD"])
    e = Export("%s" % lane.name(trial, "exp").replace("-", ""), src, fmt)
    trial.exports.append(e)
    trial.trigger("ExportImages call")
    r = api("ExportImages", BucketName="bkt", ImageIds=[src.image_id], ExportFormat=fmt,
            FileNamePrefixList=[e.prefix])
    e.keys = [p.lstrip("/") for p in r["CosPaths"]]
    while trial.before_kill():
        if all(os.path.exists(os.path.join(lane.export_dir(), k)) for k in e.keys):
            e.acked = True
            return
        time.sleep(0.1)


def nbd_write(trial, lane, disk, rng, span):
    """One qemu-io run: a write (or write-zeroes) and a flush. True if it completed."""
    length = rng.choice([SECTOR, 16 * SECTOR, 128 * SECTOR, MIB, MIB + 8 * SECTOR, 2 * MIB])
    length = min(length, span)
    off = rng.randrange((span - length) // SECTOR + 1) * SECTOR
    zero = rng.random() < 0.15
    pat = None if zero else rng.randint(1, 255)
    w = (off, length, pat)
    cmd = "write -z %d %d" % (off, length) if zero else "write -P 0x%02x %d %d" % (pat, off, length)
    with disk.lock:
        disk.inflight = w
    p = subprocess.run(["qemu-io", "-f", "raw", nbd_url(lane.node, lane.acc, disk.disk_id), "-c", cmd, "-c",
                        "flush"], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    ok = p.returncode == 0 and "failed" not in out.lower() and ("wrote %d/%d bytes" % (length, length)) in out
    with disk.lock:
        if ok:
            disk.done.append(w)
            disk.inflight = None
        # else: the write stays "in flight" (it may or may not have reached the disk)
    if not ok:
        trial.unexpected("qemu-io %s on %s failed before the kill: %s" % (cmd, disk.disk_id, out.strip()[-300:]))
    return ok


def w_nbd_writes(lane, trial, api, rng, disk):
    span = min(disk.base_size, 64 * MIB)
    for _ in range(rng.randint(3, 40)):
        if not trial.before_kill() or not nbd_write(trial, lane, disk, rng, span):
            return


def w_create_image(lane, trial, api, rng, disk, base):
    span = min(disk.base_size, 64 * MIB)
    for _ in range(rng.randint(1, 3)):
        if not trial.before_kill() or not nbd_write(trial, lane, disk, rng, span):
            return
    name = lane.name(trial, "ci")
    model = lane.work(name + ".model.raw")
    copy_model(disk.base, model)
    for w in disk.done:
        apply_write(model, w)
    o = Obj(lane.acc["AccountId"], GZ, name, model, disk.size, "create-image from %s (image %s)"
            % (disk.instance_id, base.image_id))
    trial.objs.append(o)
    if not trial.before_kill():
        return
    trial.trigger("CreateImage call")
    r = api("CreateImage", InstanceId=disk.instance_id, ImageName=name)
    o.image_id = r["ImageId"]
    img = wait_image(trial, api, o.image_id, GZ, ("CREATING",))
    if img and img["ImageState"] == "NORMAL":
        o.acked = "seen NORMAL before the kill"
    elif img:
        o.seen_failed = img["ImageState"]
        trial.unexpected("CreateImage %s became %s without a crash" % (o.image_id, img["ImageState"]))


def w_gc(lane, trial, api, rng):
    p = trial.popen(lane.node.admin_cmd("gc", "--output", "json"))
    out, err = p.communicate()
    if p.returncode not in (0, -signal.SIGKILL) and trial.before_kill():
        trial.unexpected("ikon admin gc exited %s: %s" % (p.returncode, err.strip()[-300:]))
    elif p.returncode == 0:
        trial.notes.append("gc in the mix %s" % ("finished" if trial.before_kill() else "finished after the kill"))


def w_delete(lane, trial, api, rng, victim):
    entry = [victim, False]
    trial.deletes.append(entry)
    a = lane.api(admin=True) if victim.owner == "" else api
    trial.trigger("DeleteImages call")
    a("DeleteImages", victim.region, ImageIds=[victim.image_id], DeleteBindedSnap=True)
    entry[1] = True


def run_workload(trial, label, fn, *args):
    """Runs one workload; records how far it got when the server died: `label@S-E` (ran from S
    to E seconds into the trial, before the kill), `label@S~` (started at S, cut by the kill),
    `label-` (not started)."""
    started = time.monotonic() - trial.t0
    trial.progress[label] = "@%.1f~" % started
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - every failure is recorded
        if trial.before_kill():
            trial.unexpected("%s: %s: %s" % (label, api_code(e), str(e)[:300]))
    with trial.lock:
        if trial.before_kill():
            trial.progress[label] = "@%.1f-%.1f" % (started, time.monotonic() - trial.t0)


# ---------------------------------------------------------------------------------------
# One trial


def run_instance(api, image_id, region):
    r = api("RunInstances", region, ImageId=image_id, Placement={"Zone": ZONE[region]},
            SystemDisk={"DiskSize": 1, "DiskType": "CLOUD_PREMIUM"}, InstanceCount=1)
    ins = r["InstanceIdSet"][0]
    d = api("DescribeInstances", region, InstanceIds=[ins])["InstanceSet"][0]
    return ins, d["SystemDisk"]["DiskId"]


def choose(trial, lane):
    """The workload mix: a random subset of kinds, each 1..MAX_EACH times (at least two)."""
    rng = trial.rng
    kinds = [k for k in WORKLOADS if rng.random() < 0.45]
    while len(kinds) < 2:
        k = rng.choice(WORKLOADS)
        if k not in kinds:
            kinds.append(k)
    mix = []
    for k in WORKLOADS:
        if k in kinds:
            mix += [k] * rng.randint(1, MAX_EACH[k])
    return mix


def setup(lane, trial, mix, api):
    """Prepares what the workloads start from (before the kill window): source images for
    copies, exports and deletions, and instances for NBD writes and CreateImage."""
    plans = []
    custom = [o for o in lane.registry if o.owner and o.region == GZ]
    taken = set()

    def pick_custom():
        free = [o for o in custom if o.image_id not in taken]
        o = trial.rng.choice(free) if free and trial.rng.random() < 0.7 else lane.publish_now(trial)
        taken.add(o.image_id)
        return o

    for k in mix:
        if k in ("sync", "export"):
            src = pick_custom()
            trial.busy.append(src)
            plans.append((k, (src,)))
        elif k in ("nbd-writes", "create-image"):
            pool = [o for o in lane.registry if o.region == GZ and o.image_id not in taken]
            base = trial.rng.choice(pool) if pool and trial.rng.random() < 0.7 else \
                lane.publish_now(trial, account=trial.rng.random() < 0.5)
            taken.add(base.image_id)
            trial.busy.append(base)
            ins, disk_id = run_instance(api, base.image_id, GZ)
            d = Disk(ins, disk_id, base.model, GIB)
            d.base_size = base.vsize
            trial.disks.append(d)
            plans.append((k, (d, base) if k == "create-image" else (d,)))
        elif k == "delete":
            pool = [o for o in lane.registry if o.image_id not in taken and o.owner]
            if not pool:
                continue
            victim = trial.rng.choice(pool)
            taken.add(victim.image_id)
            plans.append((k, (victim,)))
        else:
            plans.append((k, ()))
    return plans


def retire(lane, trial, api):
    """Keeps the lane's image count bounded: the oldest images beyond REGISTRY_CAP go."""
    while len(lane.registry) > REGISTRY_CAP:
        o = lane.registry.pop(0)
        a = lane.api(admin=True) if o.owner == "" else api
        a("DeleteImages", o.region, ImageIds=[o.image_id], DeleteBindedSnap=True)
        for p in (o.model,):
            if p and os.path.exists(p) and not any(x.model == p for x in lane.registry):
                os.unlink(p)


FNS = {"publish": w_publish, "http-import": w_http_import, "upload-import": w_upload_import, "sync": w_sync,
       "export": w_export, "create-image": w_create_image, "nbd-writes": w_nbd_writes, "gc": w_gc,
       "delete": w_delete}


# What a targeted kill waits for: the workloads that can bring it about, and the condition.
TARGETS = {
    "publish task": (("publish",), lambda lane, trial: running_task(lane, "publish")),
    "import task": (("http-import", "upload-import"), lambda lane, trial: running_task(lane, "import")),
    "sync task": (("sync",), lambda lane, trial: running_task(lane, "sync")),
    "export task": (("export",), lambda lane, trial: running_task(lane, "export")),
    "create_image task": (("create-image",), lambda lane, trial: running_task(lane, "create_image")),
    "upload streaming": (("upload-import",), lambda lane, trial: upload_streaming(lane)),
    "gc holding the store": (("gc",), lambda lane, trial: gc_announced(lane)),
    "NBD write in flight": (("nbd-writes", "create-image"), lambda lane, trial: any(d.inflight for d in trial.disks)),
    # Calls that write more than one catalog statement: the kill lands 0.5-8 ms after the
    # workload sends the request (these calls take 1-5 ms in the server).
    "ImportImage call": (("http-import",), None),
    "SyncImages call": (("sync",), None),
    "ExportImages call": (("export",), None),
    "CreateImage call": (("create-image",), None),
    "DeleteImages call": (("delete",), None),
}


def running_task(lane, kind):
    return bool(lane.node.query("SELECT 1 FROM tasks WHERE kind = ? AND state = 'RUNNING' LIMIT 1", kind))


def upload_streaming(lane):
    for _, _, files in os.walk(os.path.join(lane.spool(), "uploads")):
        if any(f.endswith(".part") for f in files):
            return True
    return False


def gc_announced(lane):
    for store in (os.path.join(lane.node.data, "chunks"), os.path.join(lane.root, "beijing-store")):
        try:
            if any(not f.startswith(".") for f in os.listdir(os.path.join(store, "gc"))):
                return True
        except OSError:
            pass
    return False


def plan_kill(trial, mix, window):
    """Either a moment drawn at random in the window, or (most trials) the moment a chosen
    workload is in its most fragile phase, plus a random delay of up to 0.25 s."""
    rng = trial.rng
    delay = rng.uniform(0.1, window)
    targets = sorted(t for t, (kinds, _) in TARGETS.items() if any(k in mix for k in kinds))
    target = rng.choice(targets) if targets and rng.random() < 0.65 else None
    extra = rng.uniform(0, 0.03) if rng.random() < 0.5 else rng.uniform(0, 0.25)
    if target and target.endswith(" call"):
        extra = rng.uniform(0.0005, 0.008)
    clients = rng.random() < 0.75
    second = rng.random() < 0.2
    return delay, target, extra, clients, second


def crash(trial, node, kill_clients):
    """kill -9 of the server and (if asked) of every client process still running."""
    with trial.lock:
        trial.killed.set()
        trial.kill_at = time.monotonic()
        trial.kill_wall = time.time()
        node.kill()
        if kill_clients:
            for p in trial.clients:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def second_kill(lane, trial, extra):
    """After the restart, waits (up to the longest lease plus a margin) for the runner to
    retry an interrupted task, and kills the server again while that retry runs."""
    node = lane.node
    end = time.monotonic() + PUBLISH_LEASE + 30
    while time.monotonic() < end:
        rows = node.query("SELECT kind FROM tasks WHERE state = 'RUNNING' AND attempts >= 2 AND lease_owner LIKE "
                          "'worker-%' LIMIT 1")
        if rows:
            time.sleep(extra)
            node.kill()
            trial.kill_at = time.monotonic()
            return "killed again during the retry of a %s task" % rows[0]["kind"]
        if not node.query("SELECT 1 FROM tasks WHERE state IN ('PENDING', 'RUNNING') LIMIT 1"):
            return None
        time.sleep(0.05)
    return None


def trial_run(lane, n, seed, window):
    rng = random.Random("%s:%d" % (seed, n))
    trial = Trial(n, rng)
    t_start = time.monotonic()
    if lane.node is None or not lane.node.alive():
        lane.fresh()
    node = lane.node
    api = lane.api()
    retire(lane, trial, api)
    mix = choose(trial, lane)
    plans = setup(lane, trial, mix, api)
    delay, target, extra, kill_clients, again = plan_kill(trial, mix, window)
    trial.target = target
    starts = [rng.uniform(0, 0.8) for _ in plans]
    rngs = [random.Random(rng.random()) for _ in plans]  # one per workload: replayable whatever the threads do
    threads = []
    t0 = trial.t0 = time.monotonic()
    for i, ((k, args), start, wrng) in enumerate(zip(plans, starts, rngs)):
        label = "%s#%d" % (k, i + 1)
        trial.progress[label] = "-"

        def go(k=k, args=args, start=start, label=label, wrng=wrng):
            time.sleep(start)
            if trial.before_kill():
                run_workload(trial, label, FNS[k], lane, trial, api, wrng, *args)
        t = threading.Thread(target=go, daemon=True)
        t.start()
        threads.append(t)
    if target:
        # Waits for the target's moment (at most TARGET_WAIT s; then kills anyway).
        cond = TARGETS[target][1] or (lambda lane, trial: False)
        hit = False
        while time.monotonic() - t0 < TARGET_WAIT:
            if trial.fired.wait(0.02) or cond(lane, trial):
                hit = True
                time.sleep(extra)
                break
        how = ("%s +%.4f s" % (target, extra) if hit
               else "waited %.0f s for %s, which never came" % (TARGET_WAIT, target))
    else:
        time.sleep(max(0.0, delay - (time.monotonic() - t0)))
        how = "at random"
    crash(trial, node, kill_clients)
    kill_desc = "kill -9 at %.2f s (%s; %s" % (trial.kill_at - t0, how,
                                                "server and clients" if kill_clients else "server only")
    in_flight = summarize_inflight(node, trial)
    kill_desc += "; tasks in flight: %s)" % in_flight
    t_restart = time.monotonic()
    if not node.start():
        trial.problem("restart", "ikon serve did not restart after the kill:\n" + node.log_tail())
        return finish(lane, trial, kill_desc, t_start, fatal=True)
    restart_s = time.monotonic() - t_restart
    if again and in_flight not in ("none", "?"):
        what = second_kill(lane, trial, extra)
        if what:
            kill_desc += ", " + what
            if not node.start():
                trial.problem("restart", "ikon serve did not restart after the second kill:\n" + node.log_tail())
                return finish(lane, trial, kill_desc, t_start, fatal=True)
    api = lane.api()
    # Clients that survived (server-only crash) finish on their own.
    survivors_end = time.monotonic() + STUCK_AFTER
    for p in trial.clients:
        try:
            p.wait(max(1, survivors_end - time.monotonic()))
        except subprocess.TimeoutExpired:
            trial.problem("stuck", "client %s still running %d s after the kill" % (" ".join(p.args[:4]),
                                                                                    STUCK_AFTER))
            trial.stuck += 1
            os.killpg(p.pid, signal.SIGKILL)
    for t in threads:
        t.join(60)
    settled = settle(lane, trial)
    try:
        check(lane, trial, api)
    except TrialError as e:
        trial.problem("check", str(e))
    except Exception as e:  # noqa: BLE001
        trial.problem("check", "%s: %s\n%s" % (api_code(e), e, traceback.format_exc()[-1500:]))
    tidy(lane)
    return finish(lane, trial, kill_desc, t_start, restart_s=restart_s, settled=settled)


def tidy(lane):
    """Removes the trial's files no image of the lane needs any more (sources, dumps)."""
    keep = {o.model for o in lane.registry}
    for f in os.listdir(lane.work()):
        p = lane.work(f)
        if p not in keep:
            try:
                os.unlink(p)
            except OSError:
                pass


def summarize_inflight(node, trial=None):
    """Tasks the kill interrupted (read from the catalog right after the kill)."""
    try:
        rows = node.query("SELECT task_id, kind, state FROM tasks WHERE state IN ('PENDING', 'RUNNING')")
    except Exception:  # noqa: BLE001
        return "?"
    if trial is not None:
        trial.interrupted = [r["task_id"] for r in rows]
    kinds = {}
    for r in rows:
        k = "%s:%s" % (r["kind"], r["state"][0])
        kinds[k] = kinds.get(k, 0) + 1
    return ",".join("%s%s" % (k, "x%d" % v if v > 1 else "") for k, v in sorted(kinds.items())) or "none"


def settle(lane, trial):
    """Waits until every task is SUCCEEDED, FAILED or CANCELLED; what is still PENDING or
    RUNNING STUCK_AFTER seconds after the kill is stuck."""
    node = lane.node
    deadline = trial.kill_at + STUCK_AFTER
    while True:
        rows = node.query("SELECT task_id, kind, state, attempts, max_attempts, lease_until, error, resource_id "
                          "FROM tasks WHERE state IN ('PENDING', 'RUNNING')")
        if not rows:
            done = time.monotonic() - trial.kill_at
            ids = getattr(trial, "interrupted", [])
            if ids:
                wall = trial.kill_wall  # the (first) kill, in unix seconds
                fin = node.query("SELECT task_id, kind, state, attempts, error, updated_at FROM tasks WHERE task_id IN "
                                 "(%s)" % ",".join("?" * len(ids)), *ids)
                for r in fin:
                    if r["state"] == "FAILED":
                        trial.failed_tasks.append("%s %s: %s" % (r["kind"], r["task_id"], r["error"][:200]))
                trial.notes.append("interrupted tasks: " + ", ".join(
                    "%s %s after %d attempt(s) at +%.0f s%s" % (r["kind"], r["state"], r["attempts"],
                                                               r["updated_at"] - wall,
                                                               " (%s)" % r["error"][:80] if r["error"] else "")
                    for r in fin))
            return done
        if time.monotonic() > deadline:
            now = int(time.time())
            for r in rows:
                trial.stuck += 1
                trial.problem("stuck", "task %s (%s) still %s %d s after the kill: attempts %d/%d, lease %s, "
                                       "error %r, resource %s"
                              % (r["task_id"], r["kind"], r["state"], STUCK_AFTER, r["attempts"],
                                 r["max_attempts"], "expired %d s ago" % (now - r["lease_until"])
                                 if r["lease_until"] and r["lease_until"] < now else
                                 "until +%d s" % (r["lease_until"] - now) if r["lease_until"] else "none",
                                 r["error"][:200], r["resource_id"]))
            return None
        time.sleep(0.5)


def images_of(node):
    return node.query("SELECT image_id, owner, region, name, state, state_reason, disks, kind, quota_unit "
                      "FROM images")


def verify_content(lane, api, obj, image_id):
    """RunInstances from the image, `qemu-img compare` of its model with the instance's NBD
    export, TerminateInstances. Returns None or what is wrong."""
    try:
        ins, disk = run_instance(api, image_id, obj.region)
    except Exception as e:  # noqa: BLE001
        return "RunInstances from it failed: %s: %s" % (api_code(e), e)
    try:
        rc, out = qemu_compare(obj.model, nbd_url(lane.node, lane.acc, disk))
        if rc != 0:
            return "content differs from its source (qemu-img compare exit %d: %s)" % (rc, out[-300:])
        return None
    finally:
        try:
            api("TerminateInstances", obj.region, InstanceIds=[ins])
        except Exception as e:  # noqa: BLE001
            lane_problem = "TerminateInstances %s failed: %s" % (ins, e)
            raise TrialError(lane_problem)


def delete_failed(lane, api, obj, row):
    a = lane.api(admin=True) if row["owner"] == "" else api
    try:
        a("DeleteImages", row["region"], ImageIds=[row["image_id"]], DeleteBindedSnap=True)
    except Exception as e:  # noqa: BLE001
        return "DeleteImages refused it: %s: %s" % (api_code(e), e)
    if lane.node.query("SELECT 1 FROM images WHERE image_id = ?", row["image_id"]):
        return "still in the catalog after DeleteImages"
    return None


def check(lane, trial, api):
    node = lane.node
    live, live_tasks = live_work(node)
    rows = images_of(node)
    by_key = {(r["owner"], r["region"], r["name"]): r for r in rows}
    ours = {o.key(): o for o in trial.objs}
    known = {o.key(): o for o in lane.registry}
    deleted_ok = set()
    normal_new = 0
    failed_deleted = 0
    # Images this trial deleted.
    for victim, acked in trial.deletes:
        r = by_key.get(victim.key())
        if r is None:
            deleted_ok.add(victim.key())
        elif acked:
            trial.half_made += 1
            trial.problem("half-made", "%r: DeleteImages succeeded before the kill, yet it is %s"
                          % (victim, r["state"]))
        elif r["state"] != "NORMAL":
            trial.half_made += 1
            trial.problem("half-made", "%r: a deletion was interrupted and it is now %s" % (victim, r["state"]))
    for r in rows:
        key = (r["owner"], r["region"], r["name"])
        o = ours.get(key) or known.get(key)
        if o is None:
            trial.half_made += 1
            trial.problem("half-made", "image %s %s/%s (%s) belongs to no workload" % (r["image_id"], r["region"],
                                                                                     r["name"], r["state"]))
            continue
        if o.image_id and o.image_id != r["image_id"]:
            trial.half_made += 1
            trial.problem("half-made", "%r: the catalog has %s under its name" % (o, r["image_id"]))
            continue
        o.image_id = r["image_id"]
        st = r["state"]
        if key in known and key not in ours:
            # An image of an earlier trial: it must still be NORMAL (copy sources are SYNCING
            # only while their copy runs).
            if st != "NORMAL":
                used = " (a source of this trial's workloads)" if o in trial.busy else ""
                if r["image_id"] in live:
                    trial.problem("stuck", "%r from trial %s%s is still %s: its task is stuck" % (o, o.trial, used, st))
                else:
                    trial.half_made += 1
                    trial.problem("half-made", "%r from trial %s%s is %s and no task is left to change that (%s)"
                                  % (o, o.trial, used, st, r["state_reason"][:200]))
            continue
        if st == "NORMAL":
            why = None if json.loads(r["disks"] or "[]") else "NORMAL without disks"
            why = why or verify_content(lane, api, o, r["image_id"])
            if why:
                trial.half_made += 1
                trial.problem("half-made", "%r is NORMAL but %s" % (o, why))
            else:
                o.trial = trial.n
                lane.registry.append(o)
                normal_new += 1
        elif st in FAILED_STATES:
            if o.acked:
                trial.half_made += 1
                trial.problem("half-made", "%r: %s, yet it is %s: %s" % (o, o.acked, st, r["state_reason"][:300]))
            why = delete_failed(lane, api, o, r)
            if why:
                trial.half_made += 1
                trial.problem("half-made", "%r is %s but %s" % (o, st, why))
            else:
                failed_deleted += 1
        elif r["image_id"] in live:
            trial.problem("stuck", "%r is still %s: its task is stuck" % (o, st))
        else:
            trial.half_made += 1
            trial.problem("half-made", "%r is %s and no task is left to finish it (%s)"
                          % (o, st, r["state_reason"][:200]))
    for o in trial.objs:
        if o.key() not in by_key and o.acked:
            trial.half_made += 1
            trial.problem("half-made", "%r: %s, yet it is gone" % (o, o.acked))
    for o in list(lane.registry):
        if o.key() in deleted_ok:
            lane.registry.remove(o)
        elif o.key() not in by_key:
            trial.half_made += 1
            trial.problem("half-made", "%r from trial %s vanished" % (o, o.trial))
            lane.registry.remove(o)
    # Images the workloads used (copy sources, instance bases) and a sample of older ones
    # are read back too: a crash or a collection must not damage what was there.
    normal = {(r["owner"], r["region"], r["name"]) for r in rows if r["state"] == "NORMAL"}
    recheck = [o for o in trial.busy if o in lane.registry and o.key() in normal]
    older = [o for o in lane.registry if o not in recheck and o.trial != trial.n and o.key() in normal]
    recheck += trial.rng.sample(older, min(2, len(older)))
    for o in recheck:
        why = verify_content(lane, api, o, o.image_id)
        if why:
            trial.half_made += 1
            trial.problem("half-made", "%r (trial %s) %s" % (o, o.trial, why))
    trial.notes.insert(0, "images: %d new NORMAL verified, %d failed deleted, %d re-read"
                       % (normal_new, failed_deleted, len(recheck)))
    # Each remaining check runs even if one before it could not (gc and fsck always run).
    steps = [("exports", lambda: check_exports(lane, trial)),
             ("disks", lambda: trial.notes.insert(1, check_disks(lane, trial, api))),
             ("quota", lambda: check_quota(lane, trial)),
             ("task outcomes", lambda: check_task_outcomes(lane, trial)),
             ("leftovers", lambda: check_leftovers(lane, trial, live_tasks)),
             ("probe", lambda: probe(lane, trial, api)),
             ("gc and fsck", lambda: gc_fsck(lane, trial))]
    for what, step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001
            trial.problem("check", "%s: %s: %s" % (what, api_code(e), str(e)[:300]))


def check_exports(lane, trial):
    node = lane.node
    tasks = node.query("SELECT task_id, state, payload, error FROM tasks WHERE kind = 'export'")
    expected = set()
    for e in trial.exports:
        mine = [t for t in tasks if ('"%s_' % e.prefix) in t["payload"]]
        if len(mine) > 1:
            trial.problem("export", "%d tasks for one ExportImages call (%s)" % (len(mine), e.prefix))
        keys = e.keys or [f["key"] for t in mine for f in json.loads(t["payload"])["files"]]
        state = mine[0]["state"] if mine else None
        if e.acked and state != "SUCCEEDED":
            trial.half_made += 1
            trial.problem("half-made", "export %s was complete before the kill, its task is %s" % (e.prefix, state))
        for k in keys:
            path = os.path.join(lane.export_dir(), k)
            if state == "SUCCEEDED":
                expected.add(k)
                if not os.path.exists(path):
                    trial.half_made += 1
                    trial.problem("half-made", "export %s SUCCEEDED but %s is missing" % (e.prefix, k))
                    continue
                qfmt = {"RAW": "raw", "QCOW2": "qcow2", "VMDK": "vmdk", "VHD": "vpc"}[e.fmt]
                rc, out = qemu_compare(e.src.model, path, qfmt)
                if rc != 0:
                    trial.half_made += 1
                    trial.problem("half-made", "export %s (%s) differs from image %s: %s"
                                  % (k, e.fmt, e.src.image_id, out[-300:]))
                info = subprocess.run(["qemu-img", "info", "-f", qfmt, "--output", "json", path],
                                      capture_output=True, text=True)
                vs = json.loads(info.stdout).get("virtual-size") if info.returncode == 0 else None
                if vs != e.src.vsize:
                    trial.half_made += 1
                    trial.problem("half-made", "export %s has virtual size %s, the image %d" % (k, vs, e.src.vsize))
            elif os.path.exists(path):
                trial.half_made += 1
                trial.problem("half-made", "export %s is %s but %s exists" % (e.prefix, state, k))
    # Everything else in the bucket must be a file of an earlier, successful export.
    lane.export_files = getattr(lane, "export_files", set()) | expected
    for f in sorted(os.listdir(lane.export_dir())):
        if f not in lane.export_files:
            trial.problem("leftover", "export bucket holds %s (%d bytes), no finished export's file"
                          % (f, os.path.getsize(os.path.join(lane.export_dir(), f))))


def dump_disk(lane, disk, out):
    p = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", nbd_url(lane.node, lane.acc, disk.disk_id),
                        out], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise TrialError("reading disk %s over NBD failed: %s" % (disk.disk_id, (p.stdout + p.stderr)[-300:]))


def check_disks(lane, trial, api):
    """Every write whose qemu-io run completed must read back; the one in flight at the kill
    may be there or not (4 KiB by 4 KiB); nothing else may change."""
    total = present = 0
    for d in trial.disks:
        dump = lane.work("dump-%s.raw" % d.disk_id)
        try:
            try:
                dump_disk(lane, d, dump)
            except TrialError as e:
                trial.lost += max(1, len(d.done))
                trial.problem("lost writes", "%s (%d flushed writes unreadable)" % (e, len(d.done)))
                total += len(d.done)
                continue
            size = os.path.getsize(dump)
            if size != d.size:
                trial.problem("lost writes", "disk %s reads as %d bytes, not %d" % (d.disk_id, size, d.size))
            span = min(d.base_size, 64 * MIB)
            # Expected bytes and, where the in-flight write lands, the alternative.
            owner = {}  # sector -> index of the last completed write covering it
            for i, (off, length, _) in enumerate(d.done):
                for s in range(off // SECTOR, (off + length) // SECTOR):
                    owner[s] = i
            infl = set()
            if d.inflight:
                off, length, _ = d.inflight
                infl = set(range(off // SECTOR, (off + length) // SECTOR))
            with open(d.base, "rb") as f:
                base = f.read(span)
            base = base.ljust(span, b"\0")
            with open(dump, "rb") as f:
                got = f.read(span)
                tail_data = False
                try:
                    nxt = os.lseek(f.fileno(), span, os.SEEK_DATA)
                    f.seek(nxt)
                    while True:
                        b = f.read(MIB)
                        if not b:
                            break
                        if b.count(0) != len(b):
                            tail_data = True
                            break
                except OSError:
                    pass
            if tail_data:
                trial.lost += 1
                trial.problem("lost writes", "disk %s has data past %d bytes where nothing was written"
                              % (d.disk_id, span))
            lost = set()
            stray = 0
            for s in range(span // SECTOR):
                lo = s * SECTOR
                g = got[lo:lo + SECTOR]
                if s in owner:
                    pat = d.done[owner[s]][2] or 0
                    want = bytes([pat]) * SECTOR
                else:
                    want = base[lo:lo + SECTOR]
                if g == want:
                    continue
                if s in infl:
                    alt = bytes([d.inflight[2] or 0]) * SECTOR
                    if g == alt:
                        continue
                if s in owner:
                    lost.add(owner[s])
                else:
                    stray += 1
            total += len(d.done)
            present += len(d.done) - len(lost)
            for i in sorted(lost):
                off, length, pat = d.done[i]
                trial.lost += 1
                trial.problem("lost writes", "disk %s: flushed write #%d (%s at %d, %d bytes) does not read back"
                              % (d.disk_id, i + 1, "zeroes" if pat is None else "0x%02x" % pat, off, length))
            if stray:
                trial.lost += 1
                trial.problem("lost writes", "disk %s: %d sectors differ from the base image where no write "
                                             "went" % (d.disk_id, stray))
        finally:
            if os.path.exists(dump):
                os.unlink(dump)
            try:
                api("TerminateInstances", GZ, InstanceIds=[d.instance_id])
            except Exception as e:  # noqa: BLE001
                trial.problem("check", "TerminateInstances %s: %s: %s" % (d.instance_id, api_code(e), e))
    return "nbd writes: %d flushed, %d present%s" % (total, present, "" if not any(d.inflight for d in trial.disks)
                                                      else " (+%d in flight)" % sum(1 for d in trial.disks
                                                                                    if d.inflight))


def check_task_outcomes(lane, trial):
    """A task's outcome and its image's state agree: a SUCCEEDED import, publication or
    creation has a NORMAL image (a failed one is a problem); a FAILED one whose image is
    NORMAL anyway (a publisher killed after its image turned NORMAL, before it recorded the
    task) is noted, not counted: the image is complete."""
    ids = getattr(trial, "interrupted", [])
    if not ids:
        return
    # Imports, copies, exports and creations have attempts to spare for a crash (a trial
    # kills at most twice): one that FAILED did not survive its own retry.
    for r in lane.node.query("SELECT task_id, kind, attempts, max_attempts, error FROM tasks WHERE state = 'FAILED' "
                             "AND kind IN ('import', 'sync', 'export', 'create_image') AND task_id IN (%s)"
                             % ",".join("?" * len(ids)), *ids):
        trial.problem("retry", "task %s (%s) was interrupted and its retry FAILED (attempt %d of %d): %s"
                      % (r["task_id"], r["kind"], r["attempts"], r["max_attempts"], r["error"][:300]))
    for r in lane.node.query("SELECT t.task_id, t.kind, t.state, i.image_id, i.state AS istate FROM tasks t JOIN "
                             "images i ON i.image_id = t.resource_id WHERE t.kind IN ('import', 'publish', "
                             "'create_image') AND t.task_id IN (%s)" % ",".join("?" * len(ids)), *ids):
        if r["state"] == "SUCCEEDED" and r["istate"] != "NORMAL":
            trial.problem("half-made", "task %s (%s) SUCCEEDED but image %s is %s" % (r["task_id"], r["kind"],
                                                                                    r["image_id"], r["istate"]))
            trial.half_made += 1
        elif r["state"] == "FAILED" and r["istate"] == "NORMAL":
            trial.notes.append("note: task %s (%s) FAILED but image %s is NORMAL (complete)"
                               % (r["task_id"], r["kind"], r["image_id"]))
            trial.inconsistent.append("%s %s -> %s NORMAL" % (r["kind"], r["task_id"], r["image_id"]))


def check_quota(lane, trial):
    """Each account's custom-image quota count equals the images holding a unit of it."""
    used = {(r["account_id"], r["region"]): r["used"] for r in lane.node.query(
        "SELECT account_id, region, used FROM quota_usage")}
    held = {(r["owner"], r["region"]): r["n"] for r in lane.node.query(
        "SELECT owner, region, COUNT(*) AS n FROM images WHERE quota_unit = 1 GROUP BY owner, region")}
    for k in set(used) | set(held):
        if used.get(k, 0) != held.get(k, 0):
            trial.problem("leftover", "account %s in %s: quota count %d, images holding a unit %d"
                          % (k[0], k[1], used.get(k, 0), held.get(k, 0)))


def live_work(node):
    """Images and tasks still in the hands of an unfinished (stuck) task."""
    rows = node.query("SELECT task_id, resource_id, payload FROM tasks WHERE state IN ('PENDING', 'RUNNING')")
    images = set()
    for r in rows:
        images.add(r["resource_id"])
        images.update(re.findall(r"img-[a-z0-9]{8}", r["payload"]))
    return images, {r["task_id"] for r in rows}


def check_leftovers(lane, trial, live_tasks=()):
    """With every task finished, the spool must be empty: downloads and uploads are removed
    once imported or failed. Nothing in the catalog may outlive what it belongs to: snapshots
    made for a deleted image (deleted with DeleteBindedSnap), disks of terminated instances."""
    for r in lane.node.query("SELECT snapshot_id, image_id FROM snapshots WHERE image_id != '' AND image_id NOT IN "
                             "(SELECT image_id FROM images)"):
        trial.problem("leftover", "snapshot %s of deleted image %s is still in the catalog" % (r["snapshot_id"],
                                                                                               r["image_id"]))
    for r in lane.node.query("SELECT disk_id, instance_id FROM disks WHERE instance_id != '' AND instance_id NOT IN "
                             "(SELECT instance_id FROM instances)"):
        trial.problem("leftover", "disk %s of terminated instance %s is still in the catalog" % (r["disk_id"],
                                                                                                 r["instance_id"]))
    spool = lane.spool()
    if not os.path.isdir(spool):
        return
    for dirpath, _, files in os.walk(spool):
        for f in files:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, spool)
            if any(f.startswith(t) for t in live_tasks):
                continue  # a stuck task's download (counted as stuck)
            if rel.startswith("uploads/") and f.endswith(".part"):
                why = "an upload cut by the crash, never removed"
            elif rel.startswith("uploads/"):
                why = "a finished upload no ImportImage names (its client died in between); nothing removes it"
            else:
                why = "no task is running"
            trial.problem("leftover", "spool file %s (%d bytes): %s" % (rel, os.path.getsize(p), why))


def gc_locks(lane):
    """The collections announced in the stores (`gc/<id>` holds its expiry, unix seconds)."""
    out = []
    now = time.time()
    for store in (os.path.join(lane.node.data, "chunks"), os.path.join(lane.root, "beijing-store")):
        d = os.path.join(store, "gc")
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for f in names:
            try:
                with open(os.path.join(d, f)) as fh:
                    until = int(fh.read().strip())
                out.append("%s/gc/%s (expires in %d s)" % (os.path.basename(store), f, until - now))
            except (OSError, ValueError):
                out.append("%s/gc/%s" % (os.path.basename(store), f))
    return out


def probe(lane, trial, api):
    """The service must take new work once the trial settled: a flushed NBD write and a small
    publication (each opens a chunk-store write session) must finish within PROBE_WAIT s."""
    notes = []
    held = False
    normal = {r["image_id"] for r in lane.node.query("SELECT image_id FROM images WHERE state = 'NORMAL'")}
    bases = [o for o in lane.registry if o.region == GZ and o.image_id in normal]
    if bases:
        ins, disk = run_instance(api, trial.rng.choice(bases).image_id, GZ)
        t = time.monotonic()
        try:
            p = subprocess.run(["qemu-io", "-f", "raw", nbd_url(lane.node, lane.acc, disk), "-c",
                                "write -P 0x33 0 64k", "-c", "flush"], capture_output=True, text=True,
                               timeout=PROBE_WAIT, stdin=subprocess.DEVNULL)
            if p.returncode != 0 or "failed" in (p.stdout + p.stderr).lower():
                trial.problem("unexpected", "the probe's NBD write failed: %s" % (p.stdout + p.stderr)[-300:])
            notes.append("NBD flush %.1f s" % (time.monotonic() - t))
        except subprocess.TimeoutExpired:
            trial.stuck += 1
            locks = gc_locks(lane)
            trial.problem("stuck", "a new NBD write + flush was still waiting after %d s%s"
                          % (PROBE_WAIT, "; collections announced: " + ", ".join(locks) if locks else ""))
            held = True
        finally:
            try:
                api("TerminateInstances", GZ, InstanceIds=[ins])
            except Exception as e:  # noqa: BLE001
                trial.stuck += 1
                trial.problem("stuck", "TerminateInstances of the probe's instance did not answer: %s: %s"
                              % (api_code(e), str(e)[:200]))
    if held:
        return  # the store does not take writes: a publication would wait as long
    name = lane.name(trial, "probe")
    model, path, size, _ = make_source(trial.rng, lane.work(), name)
    cmd = lane.node.admin_cmd("image", "publish", "--region", GZ, "--name", name, "--account",
                              lane.acc["AccountId"], "--output", "json", path)
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    try:
        out, err = p.communicate(timeout=PROBE_WAIT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        trial.stuck += 1
        locks = gc_locks(lane)
        trial.problem("stuck", "a new publication was still waiting for the chunk store after %d s%s"
                      % (PROBE_WAIT, "; collections announced: " + ", ".join(locks) if locks else ""))
        return
    if p.returncode != 0:
        trial.problem("unexpected", "the probe publication failed (exit %d): %s" % (p.returncode, err[-300:]))
        return
    notes.append("publish %.1f s" % (time.monotonic() - t))
    o = Obj(lane.acc["AccountId"], GZ, name, model, size, "probe")
    o.image_id = json.loads(out)["ImageId"]
    o.trial = trial.n
    why = verify_content(lane, api, o, o.image_id)
    if why:
        trial.half_made += 1
        trial.problem("half-made", "%r: %s" % (o, why))
    else:
        lane.registry.append(o)
    trial.notes.append("probe: " + ", ".join(notes))


def gc_fsck(lane, trial):
    node = lane.node
    t = time.monotonic()
    p = node.admin("gc", "--output", "json", timeout=900)
    gc_s = time.monotonic() - t
    if p.returncode != 0:
        locks = gc_locks(lane)
        trial.problem("gc", "ikon admin gc failed (exit %d after %.0f s): %s%s"
                      % (p.returncode, gc_s, p.stderr.strip()[-400:],
                         "; collections announced: " + ", ".join(locks) if locks else ""))
        gc = {}
    else:
        gc = json.loads(p.stdout)
    p = node.admin("fsck", "--output", "json", timeout=900)
    try:
        f = json.loads(p.stdout)
    except ValueError:
        trial.orphans += 1
        trial.problem("orphans", "ikon admin fsck failed (exit %d): %s" % (p.returncode, p.stderr.strip()[-400:]))
        return
    bad = (f["OrphanChunks"] + len(f["MissingChunks"]) + len(f["MissingManifests"]) + len(f["CorruptChunks"])
           + len(f["CorruptManifests"]))
    if bad or not f["Clean"] or p.returncode != 0:
        trial.orphans += max(bad, 1)
        trial.problem("orphans", "fsck after gc: %s" % json.dumps(
            {k: f[k] for k in ("OrphanChunks", "OrphanBytes", "MissingChunks", "MissingManifests", "CorruptChunks",
                               "CorruptManifests", "Clean")})[:1500])
    trial.notes.append("gc %.1f s (deleted %s chunks, %s manifests), fsck %d manifests %d chunks %s"
                       % (gc_s, gc.get("DeletedChunks", "?"), gc.get("DeletedManifests", "?"), f["Manifests"],
                          f["Chunks"], "clean" if f["Clean"] else "NOT clean"))


def notable_log(lane, n=12):
    """The server log's last warnings and errors (and start markers)."""
    if lane.node is None:
        return []
    try:
        with open(lane.node.log_path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    keep = [x for x in lines if " WARN " in x or " ERROR " in x or x.startswith("====")]
    return [x[:400] for x in keep[-n:]]


def finish(lane, trial, kill_desc, t_start, restart_s=None, settled=None, fatal=False):
    for e in trial.errors:
        trial.problem("unexpected", e)
    # Each workload as it stood at the kill: ran from S to E s (@S-E), cut (@S~), not started (-).
    wl = " ".join("%s%s" % (re.sub(r"#\d+$", "", k), v) for k, v in trial.progress.items())
    failed = bool(trial.problems)
    head = "trial %d [lane %d] %s: %s, " % (trial.n, lane.idx, wl, kill_desc)
    if restart_s is not None:
        head += "restarted in %.1f s, settled %s; " % (restart_s, "in %.0f s" % settled if settled is not None
                                                        else "NEVER")
    head += "; ".join(trial.notes)
    head += " (%.0f s) — %s" % (time.monotonic() - t_start, "FAILED" if failed else "ok")
    lines = [head] + ["    %s" % p for p in trial.problems]
    if failed:
        lines.append("    data dir: %s%s" % (lane.root, "" if lane.keep else " (removed; --keep keeps it)"))
        lines.append("    server log, warnings and errors (tail): %s" % (lane.node.log_path if lane.node else ""))
        lines += ["      " + x for x in notable_log(lane)]
    say("\n".join(lines))
    if failed or fatal:
        lane.needs_fresh = True
    return {"inconsistent": trial.inconsistent, "failed_tasks": trial.failed_tasks, "failed": failed,
            "causes": sorted({p.split(":", 1)[0] for p in trial.problems}),
            "half": trial.half_made, "stuck": trial.stuck, "lost": trial.lost,
            "orphans": trial.orphans}


# ---------------------------------------------------------------------------------------


def lane_worker(lane, trials, seed, window, results):
    for n in trials:
        try:
            if getattr(lane, "needs_fresh", False) or lane.node is None:
                lane.needs_fresh = False
                lane.fresh()
            results[n] = trial_run(lane, n, seed, window)
        except Exception as e:  # noqa: BLE001 - a trial that cannot run is a failed trial
            say("trial %d [lane %d] — FAILED: %s\n%s" % (n, lane.idx, e, traceback.format_exc()[-2000:]))
            if lane.node is not None:
                say("\n".join(["    server log, warnings and errors (tail): " + lane.node.log_path]
                              + ["      " + x for x in notable_log(lane)]))
            results[n] = {"inconsistent": [], "failed_tasks": [], "failed": True, "causes": ["driver"], "half": 0,
                          "stuck": 0, "lost": 0, "orphans": 0}
            lane.needs_fresh = True
    if lane.node is not None:
        lane.node.stop()


def main():
    global harness, IKON
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=3,
                    help="lanes side by side, each with its own server and data dir (default 3; most of a trial "
                         "is waiting for leases to run out)")
    ap.add_argument("--window", type=float, default=2.5, help="kill within this many seconds of the start")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs of failed trials")
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    IKON = os.path.abspath(a.bin)
    os.environ["IKON_BIN"] = IKON
    import harness as h  # noqa: E402 (needs IKON_BIN)
    harness = h
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 10**9)
    jobs = max(1, min(a.jobs, a.trials))
    run_root = tempfile.mkdtemp(prefix="ikon-crash-")
    say("crash trials: %d trials, seed %d, %d lane(s), kill within %.1f s; replay with --seed %d --jobs %d; "
        "work dir %s" % (a.trials, seed, jobs, a.window, seed, jobs, run_root))
    http = start_http(run_root)
    lanes = [Lane(i + 1, run_root, http.server_address[1], a.keep) for i in range(jobs)]
    results = {}
    t0 = time.monotonic()
    threads = []
    for lane in lanes:
        mine = [n for n in range(1, a.trials + 1) if (n - 1) % jobs == lane.idx - 1]
        t = threading.Thread(target=lane_worker, args=(lane, mine, seed, a.window, results), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    http.shutdown()
    tot = {k: sum(r[k] for r in results.values()) for k in ("half", "stuck", "lost", "orphans")}
    failures = sum(1 for r in results.values() if r["failed"]) + (a.trials - len(results))
    kept = [d for lane in lanes for d in lane.kept]
    if a.keep:
        for lane in lanes:
            if getattr(lane, "needs_fresh", False) and lane.root not in kept:
                kept.append(lane.root)
    for lane in lanes:
        if lane.node is not None and lane.root not in kept:
            if os.environ.get("IKON_CRASH_KEEP_ALL"):  # debugging aid: keep every lane's data dir
                kept.append(lane.root)
            else:
                shutil.rmtree(lane.root, ignore_errors=True)
    if kept:
        say("kept data dirs: %s" % " ".join(kept))
    else:
        shutil.rmtree(run_root, ignore_errors=True)
    causes = {}
    for r in results.values():
        for c in r["causes"]:
            causes[c] = causes.get(c, 0) + 1
    ft = [x for r in results.values() for x in r["failed_tasks"]]
    if ft:
        say("interrupted tasks that ended FAILED: %d: %s"
            % (len(ft), "; ".join(ft[:10])))
    inc = [x for r in results.values() for x in r["inconsistent"]]
    if inc:
        say("tasks FAILED whose image is NORMAL and complete (noted, not counted): %d: %s"
            % (len(inc), "; ".join(inc[:10])))
    if causes:
        say("failed trials by what they found: %s" % ", ".join("%s %d" % kv for kv in sorted(causes.items())))
    say("elapsed %.0f s, seed %d" % (time.monotonic() - t0, seed))
    say("trials %d, failures %d, half-made %d, stuck %d, lost writes %d, orphans after gc %d"
        % (a.trials, failures, tot["half"], tot["stuck"], tot["lost"], tot["orphans"]))
    return 1 if failures or any(tot.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

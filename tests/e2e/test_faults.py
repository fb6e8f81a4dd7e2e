"""Storage faults: `ikon serve` whose guangzhou store is the S3 engine reached through a
fault-injecting proxy (tests/e2e/faultproxy.py; short timeouts and few retries in `[s3]`),
and whose beijing store is a 16 MiB tmpfs. Uploads imported while the engine answers 503,
resets connections and stalls past the timeout; instance reads, exports and cross-region
copies while GET bodies come back truncated or with a flipped byte; imports into a store that
fills up (S3 `QuotaExceeded` from the proxy, ENOSPC from the tmpfs). Every operation either
completes with content identical to its source (`qemu-img compare` over NBD or on the
exported file) or fails with its reason stated — never a corrupt image, never a hang past
the timeouts — and what was stored before is intact afterwards (`ikon admin fsck` clean
after `ikon admin gc`)."""

import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness as h
from faultproxy import FaultProxy
from harness import req

S = None
P = None
ACC = None
WORK = None
TMPFS = None
# An operation under faults finishes (or fails) well within this.
DEADLINE = 240


def s3env(name):
    v = os.environ.get(name, "")
    if not v:
        raise AssertionError("%s is not set: tests/e2e/run.sh starts an S3 engine (scripts/start-s3.sh)" % name)
    return v


def config_toml(prefix):
    lines = ['[s3]', 'endpoint = "%s"' % P.url, 'region = "%s"' % s3env("IKON_TEST_S3_REGION"),
             'access_key_id = "%s"' % s3env("IKON_TEST_S3_ACCESS_KEY_ID"),
             'secret_access_key = "%s"' % s3env("IKON_TEST_S3_SECRET_ACCESS_KEY"),
             'max_retries = 4', 'timeout_secs = 2', 'connect_timeout_secs = 1', 'retry_timeout_secs = 30', '',
             '[export]', 'dir = "%s"' % os.path.join(WORK, "exports"), '',
             '[limits]', 'daily_operations = 1000', '']
    for name, zones in h.REGIONS.items():
        lines += ['[[regions]]', 'name = "%s"' % name,
                  'copy_allowed = %s' % ("false" if name.startswith("na-") else "true")]
        if name == "ap-guangzhou":
            lines.append('store = "s3://%s/%s"' % (s3env("IKON_TEST_S3_BUCKET"), prefix))
        if name == "ap-beijing":
            lines.append('store = "%s"' % TMPFS)
        for z in zones:
            lines += ['[[regions.zones]]', 'name = "%s"' % z]
        lines.append('')
    return "\n".join(lines)


def setUpModule():
    global S, P, ACC, WORK, TMPFS
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-faults-")
    os.makedirs(os.path.join(WORK, "exports", "out"))
    TMPFS = os.path.join(WORK, "tmpfs")
    os.makedirs(TMPFS)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", TMPFS], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("mounting a 16 MiB tmpfs (the full-store test needs it) failed: " + p.stderr)
    upstream = s3env("IKON_TEST_S3_ENDPOINT").split("://", 1)[1].rstrip("/")
    P = FaultProxy(upstream, seed=7)
    S = h.Server(config_toml("faults-%s" % secrets.token_hex(4)), "faults")
    ACC = S.account("faults")


def tearDownModule():
    try:
        if S:
            S.stop()
        if P:
            P.stop()
    finally:
        subprocess.run(["umount", TMPFS], capture_output=True)
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


def disk(name, data_mib, seed):
    """A qcow2 of 32 MiB holding `data_mib` MiB of data derived from `seed`."""
    raw = os.path.join(WORK, name + ".raw")
    with open(raw, "wb") as f:
        f.truncate(32 << 20)
        f.seek(1 << 20)
        block = hashlib.sha512(b"%s-%d" % (name.encode(), seed)).digest()
        for i in range(data_mib * 16):
            f.write(hashlib.sha512(block + i.to_bytes(4, "little")).digest() * 1024)
    out = os.path.join(WORK, name + ".qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out], check=True)
    os.unlink(raw)
    return out


def upload(path, name, region="ap-guangzhou"):
    """`ikon image import --wait`: (image id or None, state, reason, seconds)."""
    t = time.time()
    p = subprocess.run([h.IKON, "image", "import", path, "--endpoint", S.url, "--secret-id", ACC["SecretId"],
                        "--secret-key", ACC["SecretKey"], "--region", region, "--name", name, "--os-type", "Debian",
                        "--os-version", "12", "--force", "--wait", "--output", "json"],
                       capture_output=True, text=True, timeout=DEADLINE)
    took = time.time() - t
    if p.stdout.strip().startswith("{"):
        out = json.loads(p.stdout)
        return out.get("ImageId"), out.get("ImageState"), out.get("Reason") or "", took
    return None, "REFUSED", p.stderr.strip(), took


def nbd_compare(image, source, region="ap-guangzhou"):
    """Runs an instance of `image` and compares its disk (over NBD) with `source`: the exit
    status of `qemu-img compare` (0 identical, 1 different, 2 error) and its output."""
    c = h.sdk(S, ACC, region=region)
    zone = h.REGIONS[region][0]
    (ins,) = c.RunInstances(req("RunInstances", ImageId=image, Placement={"Zone": zone})).InstanceIdSet
    d = c.DescribeInstances(req("DescribeInstances", InstanceIds=[ins])).InstanceSet[0].SystemDisk.DiskId
    token = hmac.new(ACC["SecretKey"].encode(), ("ikon-nbd-v1:" + d).encode(), "sha256").hexdigest()
    url = "nbd://%s/%s/%s/%s" % (S.nbd, d, ACC["SecretId"], token)
    p = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", source, url],
                       capture_output=True, text=True, timeout=DEADLINE)
    c.TerminateInstances(req("TerminateInstances", InstanceIds=[ins]))
    return p.returncode, p.stdout + p.stderr


def image_state(image, region="ap-guangzhou"):
    r = h.sdk(S, ACC, region=region).DescribeImages(req("DescribeImages", ImageIds=[image]))
    return r.ImageSet[0].ImageState if r.ImageSet else None


class Faults(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def tearDown(self):
        P.faults.set()
        super().tearDown()

    def settled(self, image, source, region="ap-guangzhou"):
        """NORMAL and identical, or failed with a reason and deletable; returns which."""
        st = image_state(image, region)
        if st == "NORMAL":
            rc, out = nbd_compare(image, source, region)
            self.assertEqual(rc, 0, "a NORMAL image must read back identical (faults off): " + out)
            return "ok"
        self.assertIn(st, ("IMPORTFAILED", "CREATEFAILED"), st)
        h.sdk(S, ACC, region=region).DeleteImages(req("DeleteImages", ImageIds=[image]))
        return "failed"

    def fsck_clean_after_gc(self):
        S.admin("gc", "--output", "json")
        p = S.admin("fsck", "--output", "json", check=False)
        r = json.loads(p.stdout)
        self.assertTrue(r["Clean"], r)
        self.assertEqual((r["MissingChunks"], r["CorruptChunks"], r["OrphanChunks"]), ([], [], 0), r)

    def test_imports_while_the_engine_fails_resets_and_stalls(self):
        P.faults.set(error=0.15, reset=0.10, stall=0.04, stall_secs=4)
        results = []
        for i in range(3):
            src = disk("flaky%d" % i, 3, i)
            image, state, reason, took = upload(src, "flaky-%d-%s" % (i, secrets.token_hex(2)))
            self.assertLess(took, DEADLINE)
            results.append((image, state, reason, took, src))
        counts = dict(P.faults.counts)
        P.faults.set()
        print("faults injected %s; imports: %s" % (counts, [(st, round(t), r[:120]) for _, st, r, t, _ in results]),
              file=sys.stderr)
        for image, state, reason, _, src in results:
            if state == "IMPORTFAILED":
                self.assertTrue(reason, "a failed import states why")
            if image:
                self.settled(image, src)
        self.assertGreater(sum(counts.get(k, 0) for k in ("error", "reset", "stall")), 0, counts)
        self.assertTrue(any(st == "NORMAL" for _, st, _, _, _ in results), (results, counts))
        self.fsck_clean_after_gc()

    def test_reads_exports_and_copies_with_truncated_and_garbled_bodies(self):
        src = disk("garble", 4, 1)
        image, state, reason, _ = upload(src, "garble-%s" % secrets.token_hex(2))
        self.assertEqual(state, "NORMAL", reason)
        P.faults.set(truncate=0.25, flip=0.25)
        # Instance reads through NBD: identical (a garbled chunk is fetched again).
        rc, out = nbd_compare(image, src)
        self.assertEqual(rc, 0, out)
        # Export to a directory: the file is identical, or the task failed with its reason.
        c = h.sdk(S, ACC)
        r = c.ExportImages(req("ExportImages", BucketName="out", ImageIds=[image], ExportFormat="QCOW2"))
        deadline = time.time() + DEADLINE
        exported = os.path.join(WORK, "exports", "out")
        while time.time() < deadline:
            files = [f for f in os.listdir(exported) if not f.startswith(".")]
            if files:
                break
            time.sleep(0.5)
        if files:
            p = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", src,
                                os.path.join(exported, files[0])], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        del r
        # A copy to shanghai (read through the proxy): NORMAL and identical, or failed.
        r = c.SyncImages(req("SyncImages", ImageIds=[image], DestinationRegions=["ap-shanghai"],
                             ImageSetRequired=True))
        copy = r.ImageSet[0].ImageId
        deadline = time.time() + DEADLINE
        while time.time() < deadline and image_state(copy, "ap-shanghai") not in ("NORMAL", "CREATEFAILED"):
            time.sleep(0.5)
        counts = dict(P.faults.counts)
        P.faults.set()
        print("faults injected %s; export %s; copy %s" % (counts, "file" if files else "failed",
                                                          image_state(copy, "ap-shanghai")), file=sys.stderr)
        self.assertIn(image_state(copy, "ap-shanghai"), ("NORMAL", "CREATEFAILED"), "the copy hangs")
        self.settled(copy, src, "ap-shanghai")
        self.assertGreater(counts.get("truncate", 0) + counts.get("flip", 0), 0, counts)
        self.fsck_clean_after_gc()

    def test_a_full_store_fails_the_import_and_keeps_what_was_stored(self):
        first = disk("kept", 2, 3)
        kept, state, reason, _ = upload(first, "kept-%s" % secrets.token_hex(2))
        self.assertEqual(state, "NORMAL", reason)
        # The S3 engine answers QuotaExceeded after 1 MiB more.
        P.faults.set(put_budget=1 << 20)
        big = disk("toobig", 6, 4)
        image, state, reason, _ = upload(big, "toobig-%s" % secrets.token_hex(2))
        P.faults.set()
        self.assertEqual(state, "IMPORTFAILED", reason)
        print("full S3 store: %s" % reason, file=sys.stderr)
        self.assertIn("Quota", reason)
        self.settled(image, big)
        rc, out = nbd_compare(kept, first)
        self.assertEqual(rc, 0, out)
        # The beijing store is a 16 MiB tmpfs: a small image fits, a large one fails (ENOSPC)
        # and the small one stays intact.
        small = disk("fits", 2, 5)
        fits, state, reason, _ = upload(small, "fits-%s" % secrets.token_hex(2), region="ap-beijing")
        self.assertEqual(state, "NORMAL", reason)
        huge = disk("nospace", 20, 6)
        image, state, reason, _ = upload(huge, "nospace-%s" % secrets.token_hex(2), region="ap-beijing")
        self.assertEqual(state, "IMPORTFAILED", reason)
        print("full tmpfs store: %s" % reason, file=sys.stderr)
        self.assertIn("space", reason.lower())
        self.settled(image, huge, "ap-beijing")
        rc, out = nbd_compare(fits, small, "ap-beijing")
        self.assertEqual(rc, 0, out)
        self.fsck_clean_after_gc()


if __name__ == "__main__":
    unittest.main()

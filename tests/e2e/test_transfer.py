"""SyncImages (cross-region copy) and ExportImages end to end, with Tencent's own SDK and
tccli against a real `ikon serve` whose regions keep their chunks in different stores:
Guangzhou and Hong Kong in the data directory, Shanghai in a real S3 engine, Beijing in
another directory. Copies must send only the chunks the destination lacks (the bytes that
arrive in the destination store are measured); exports in every format are downloaded from
the S3 bucket and checked with `qemu-img check` and `qemu-img compare` against the source.

Needs IKON_TEST_S3_ENDPOINT, IKON_TEST_S3_REGION, IKON_TEST_S3_ACCESS_KEY_ID,
IKON_TEST_S3_SECRET_ACCESS_KEY and IKON_TEST_S3_BUCKET (tests/e2e/run.sh starts an engine
with scripts/start-s3.sh when they are unset); a missing engine fails the suite."""

import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import harness as h
from harness import req, sdk_error

MIB = 1 << 20
S = None        # the server
ACC = None      # the account copying and exporting
WORK = None
PREFIX = None   # this run's key prefix in the bucket
BEIJING = None  # Beijing's store directory


def s3env(name):
    v = os.environ.get(name, "")
    if not v:
        raise AssertionError("%s is not set: these tests need a real S3 engine "
                             "(eval \"$(bash scripts/start-s3.sh)\"; tests/e2e/run.sh does it)" % name)
    return v


def s3_curl(path, *args, query=""):
    """A SigV4-signed request to the S3 engine (curl --aws-sigv4); returns stdout bytes."""
    url = "%s/%s%s" % (s3env("IKON_TEST_S3_ENDPOINT"), path, ("?" + query) if query else "")
    cmd = ["curl", "-sS", "-f", "--aws-sigv4", "aws:amz:%s:s3" % s3env("IKON_TEST_S3_REGION"),
           "--user", "%s:%s" % (s3env("IKON_TEST_S3_ACCESS_KEY_ID"), s3env("IKON_TEST_S3_SECRET_ACCESS_KEY")),
           "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"] + list(args) + [url]
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError("curl %s: %s" % (url, p.stderr.decode(errors="replace")))
    return p.stdout


def s3_list(prefix):
    """{key: size} of the test bucket's objects whose key starts with `prefix` (no '/')."""
    assert "/" not in prefix
    out, token = {}, None
    while True:
        q = "list-type=2&prefix=" + urllib.parse.quote(prefix, safe="")
        if token:
            q += "&continuation-token=" + urllib.parse.quote(token, safe="")
        root = ET.fromstring(s3_curl(s3env("IKON_TEST_S3_BUCKET"), query=q))
        ns = {"s": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
        p = "s:" if ns else ""
        for c in root.findall(p + "Contents", ns):
            out[c.find(p + "Key", ns).text] = int(c.find(p + "Size", ns).text)
        if (root.findtext(p + "IsTruncated", "false", ns) or "false") != "true":
            return out
        token = root.findtext(p + "NextContinuationToken", None, ns)


def stored_bytes_s3(region_prefix):
    """Bytes of chunks held by the store at s3://bucket/<region_prefix>."""
    return sum(n for k, n in s3_list(region_prefix).items() if "/chunks/" in k)


def nbd_url(disk_id):
    """The NBD address of one of ACC's disks (the export name carries its HMAC token)."""
    token = hmac.new(ACC["SecretKey"].encode(), ("ikon-nbd-v1:" + disk_id).encode(), hashlib.sha256).hexdigest()
    return "nbd://%s/%s/%s/%s" % (S.nbd, disk_id, ACC["SecretId"], token)


def qemu_io(url, *cmds):
    args = ["qemu-io", "-f", "raw", url]
    for c in cmds:
        args += ["-c", c]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    if p.returncode != 0 or "failed" in out.lower():
        raise AssertionError("qemu-io %s: exit %d\n%s" % (cmds, p.returncode, out))


def stored_bytes_dir(d):
    total = 0
    for root, _, files in os.walk(os.path.join(d, "chunks")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files if not f.startswith("."))
    return total


def make_raw(path, pattern):
    """A raw disk: one MiB per entry, None = zeros, else data derived from that seed (the
    same seed gives the same MiB, so images can share chunks)."""
    with open(path, "wb") as f:
        for seed in pattern:
            if seed is None:
                f.write(b"\0" * MIB)
            else:
                block = hashlib.sha512(b"seed-%d" % seed).digest()
                f.write(b"".join(hashlib.sha512(block + i.to_bytes(4, "little")).digest()
                                 for i in range(MIB // 64)))


def config_toml():
    lines = ['[s3]',
             'endpoint = "%s"' % s3env("IKON_TEST_S3_ENDPOINT"),
             'region = "%s"' % s3env("IKON_TEST_S3_REGION"),
             'access_key_id = "%s"' % s3env("IKON_TEST_S3_ACCESS_KEY_ID"),
             'secret_access_key = "%s"' % s3env("IKON_TEST_S3_SECRET_ACCESS_KEY"),
             '', '[export]', 'work_dir = "%s"' % WORK, '',
             # Every test here calls limited actions; the limit itself is tested on a server
             # with the preset's 5 a day.
             '[limits]', 'daily_operations = 1000', '']
    for name, zones in h.REGIONS.items():
        lines += ['[[regions]]', 'name = "%s"' % name, 'copy_allowed = %s' % ("false" if name.startswith("na-")
                                                                              else "true")]
        if name == "ap-shanghai":
            lines.append('store = "s3://%s/%s-shanghai"' % (s3env("IKON_TEST_S3_BUCKET"), PREFIX))
        if name == "ap-beijing":
            lines.append('store = "%s"' % BEIJING)
        for z in zones:
            lines += ['[[regions.zones]]', 'name = "%s"' % z]
        lines.append('')
    return "\n".join(lines)


def setUpModule():
    global S, ACC, WORK, PREFIX, BEIJING
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-transfer-")
    PREFIX = "e2e-%s" % secrets.token_hex(4)
    BEIJING = os.path.join(WORK, "beijing-store")
    S = h.Server(config_toml(), "transfer")
    ACC = S.account("transfer")


def tearDownModule():
    if S:
        S.stop()
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


def _with(model, **fields):
    for k, v in fields.items():
        setattr(model, k, v)
    return model


def image(client, image_id):
    r = client.DescribeImages(req("DescribeImages", ImageIds=[image_id]))
    return r.ImageSet[0] if r.ImageSet else None


def wait_state(client, image_id, states, deadline=300):
    """Polls DescribeImages until the image reaches one of `states`; returns it."""
    end = time.monotonic() + deadline
    seen = []
    while time.monotonic() < end:
        i = image(client, image_id)
        if i is not None:
            if not seen or seen[-1] != (i.ImageState, i.SyncPercent):
                seen.append((i.ImageState, i.SyncPercent))
            if i.ImageState in states:
                return i, seen
        time.sleep(0.2)
    raise AssertionError("image %s did not reach %s (seen %s)\n%s" % (image_id, states, seen, S.log()))


class Sync(h.ServerTestCase):
    servers = property(lambda self: (S,))

    def publish(self, pattern, name):
        path = os.path.join(WORK, "%s.raw" % name)
        make_raw(path, pattern)
        return S.publish(path, account=ACC, name=name)["ImageId"], path

    def test_copy_sends_only_missing_chunks(self):
        gz = h.sdk(S, ACC, "ap-guangzhou")
        sh = h.sdk(S, ACC, "ap-shanghai")
        # 24 MiB, 16 MiB of data; the second image differs from it in one MiB.
        base = [None if i % 3 == 2 else 1000 + i for i in range(24)]
        data = sum(1 for s in base if s is not None) * MIB
        a, _ = self.publish(base, "sync-a")
        before = stored_bytes_s3(PREFIX + "-shanghai")
        r = gz.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["ap-shanghai"],
                              ImageSetRequired=True))
        self.assertEqual(len(r.ImageSet), 1)
        self.assertEqual(r.ImageSet[0].Region, "ap-shanghai")
        copy = r.ImageSet[0].ImageId
        src, seen = wait_state(gz, a, ["NORMAL"])
        for st, pct in seen:
            if st == "SYNCING":
                self.assertIsInstance(pct, int)
        c, _ = wait_state(sh, copy, ["NORMAL", "CREATEFAILED"])
        self.assertEqual(c.ImageState, "NORMAL", c.to_json_string())
        self.assertEqual((c.ImageName, c.ImageType), ("sync-a", "PRIVATE_IMAGE"))
        self.assertEqual(stored_bytes_s3(PREFIX + "-shanghai") - before, data)
        # Not visible in Guangzhou as a second image; visible in Shanghai.
        self.assertIsNone(image(gz, copy))
        # The 1-MiB-different image: only that MiB travels.
        other = list(base)
        other[4] = 777
        b, _ = self.publish(other, "sync-b")
        before = stored_bytes_s3(PREFIX + "-shanghai")
        r = gz.SyncImages(req("SyncImages", ImageIds=[b], DestinationRegions=["ap-shanghai"],
                              ImageName="sync-b-copy", ImageSetRequired=True))
        c, _ = wait_state(sh, r.ImageSet[0].ImageId, ["NORMAL", "CREATEFAILED"])
        self.assertEqual((c.ImageState, c.ImageName), ("NORMAL", "sync-b-copy"))
        self.assertEqual(stored_bytes_s3(PREFIX + "-shanghai") - before, MIB)
        # The source turns NORMAL when its task is recorded (just after the copy).
        wait_state(gz, b, ["NORMAL"])
        # Without ImageSetRequired the set is empty (the documented default).
        r = gz.SyncImages(req("SyncImages", ImageIds=[b], DestinationRegions=["ap-hongkong"]))
        self.assertEqual(r.ImageSet, [])
        wait_state(gz, b, ["NORMAL"])

    def test_tccli_copy_to_a_directory_store(self):
        a, _ = self.publish([1 + i if i % 2 else None for i in range(8)], "sync-tccli")
        before = stored_bytes_dir(BEIJING) if os.path.isdir(BEIJING) else 0
        p = h.tccli(S, ACC, "cvm", "SyncImages", "--ImageIds", json.dumps([a]),
                    "--DestinationRegions", json.dumps(["ap-beijing"]), "--ImageSetRequired", "true")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout)
        copy = out["ImageSet"][0]["ImageId"]
        bj = h.sdk(S, ACC, "ap-beijing")
        c, _ = wait_state(bj, copy, ["NORMAL", "CREATEFAILED"])
        self.assertEqual(c.ImageState, "NORMAL")
        self.assertEqual(stored_bytes_dir(BEIJING) - before, 4 * MIB)

    def test_instances_in_a_region_with_its_own_store(self):
        """An image copied to a region with its own store runs there: its instances read it from
        that store, their writes land in it, and an image made from one carries them."""
        gz, bj = h.sdk(S, ACC, "ap-guangzhou"), h.sdk(S, ACC, "ap-beijing")
        a, path = self.publish([1300 + i for i in range(4)] + [None] * 4, "run-in-beijing")
        r = gz.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["ap-beijing"], ImageSetRequired=True))
        copy = r.ImageSet[0].ImageId
        c, _ = wait_state(bj, copy, ["NORMAL", "CREATEFAILED"])
        self.assertEqual(c.ImageState, "NORMAL")
        wait_state(gz, a, ["NORMAL"])

        def run(image):
            (ins,) = bj.RunInstances(req("RunInstances", ImageId=image,
                                         Placement={"Zone": "ap-beijing-3"})).InstanceIdSet
            d = bj.DescribeInstances(req("DescribeInstances", InstanceIds=[ins])).InstanceSet[0]
            return ins, nbd_url(d.SystemDisk.DiskId)

        def read_back(url):
            out = os.path.join(WORK, "beijing-readback.raw")
            if os.path.exists(out):
                os.unlink(out)
            p = subprocess.run(["qemu-img", "dd", "-f", "raw", "-O", "raw", "bs=1M", "count=8", "if=" + url,
                                "of=" + out], capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            with open(out, "rb") as f:
                return f.read(8 * MIB)

        ins, url = run(copy)
        with open(path, "rb") as f:
            original = f.read()
        self.assertEqual(read_back(url), original)
        before = stored_bytes_dir(BEIJING)
        qemu_io(url, "write -P 0x5a 6M 1M", "flush")
        self.assertEqual(stored_bytes_dir(BEIJING) - before, MIB, "the written MiB is in Beijing's store")
        made = bj.CreateImage(req("CreateImage", InstanceId=ins, ImageName="made-in-beijing")).ImageId
        m, _ = wait_state(bj, made, ["NORMAL", "CREATEFAILED"])
        self.assertEqual(m.ImageState, "NORMAL")
        _, url2 = run(made)
        want = original[:6 * MIB] + b"\x5a" * MIB + original[7 * MIB:]
        self.assertEqual(read_back(url2), want)
        self.assertEqual(stored_bytes_dir(BEIJING) - before, MIB, "an image from an instance copies nothing")

    def test_policy_refusals(self):
        gz = h.sdk(S, ACC, "ap-guangzhou")
        a, _ = self.publish([5, None], "sync-refused")
        e = sdk_error(lambda: gz.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["na-ashburn"])))
        self.assertEqual(e.code, "UnsupportedOperation.Region")
        self.assertIn("na-ashburn", e.message)
        self.assertIn("ap-hongkong", e.message)
        e = sdk_error(lambda: gz.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["ap-guangzhou"])))
        self.assertEqual(e.code, "InvalidParameterValue")
        e = sdk_error(lambda: gz.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["xx-nowhere-1"])))
        self.assertEqual(e.code, "InvalidRegion.NotFound")
        e = sdk_error(lambda: gz.SyncImages(req("SyncImages", ImageIds=["img-00000000"],
                                                DestinationRegions=["ap-shanghai"])))
        self.assertEqual(e.code, "InvalidImageId.NotFound")
        # North America can not send either.
        na = h.sdk(S, ACC, "na-ashburn")
        e = sdk_error(lambda: na.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["ap-shanghai"])))
        self.assertEqual(e.code, "InvalidImageId.NotFound")  # the image lives in Guangzhou
        # A dry run checks without copying.
        gz.SyncImages(req("SyncImages", ImageIds=[a], DestinationRegions=["ap-shanghai"], DryRun=True))
        self.assertEqual(image(gz, a).ImageState, "NORMAL")

    def test_daily_operation_limit(self):
        preset = h.Server("", "limit")
        self.addCleanup(preset.stop)
        acc = preset.account("limit")
        gz = h.sdk(preset, acc, "ap-guangzhou")
        # Every call counts, refused or not (5 a day in the preset); the sixth is refused.
        for _ in range(5):
            e = sdk_error(lambda: gz.SyncImages(req("SyncImages", ImageIds=["img-00000000"],
                                                    DestinationRegions=["ap-shanghai"])))
            self.assertEqual(e.code, "InvalidImageId.NotFound")
        e = sdk_error(lambda: gz.SyncImages(req("SyncImages", ImageIds=["img-00000000"],
                                                DestinationRegions=["ap-shanghai"])))
        self.assertEqual(e.code, "LimitExceeded")


class Export(h.ServerTestCase):
    servers = property(lambda self: (S,))

    @classmethod
    def setUpClass(cls):
        cls.raw = os.path.join(WORK, "export-src.raw")
        make_raw(cls.raw, [11, None, 12, 13, None, None, 14, None])
        cls.image = S.publish(cls.raw, account=ACC, name="export-src")["ImageId"]

    def wait_object(self, key, deadline=300):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if key in s3_list(key.split("_", 1)[0]):
                return
            time.sleep(0.3)
        raise AssertionError("%s never appeared in the bucket\n%s" % (key, S.log()))

    def check_file(self, key, qemu_fmt):
        local = os.path.join(WORK, key)
        s3_curl("%s/%s" % (s3env("IKON_TEST_S3_BUCKET"), key), "-o", local)
        if qemu_fmt in ("qcow2", "vmdk"):  # raw and vpc have no metadata qemu-img can check
            subprocess.run(["qemu-img", "check", "-f", qemu_fmt, local], check=True, capture_output=True)
        p = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", qemu_fmt, self.raw, local],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("size mismatch", (p.stdout + p.stderr).lower())
        # The export keeps the image's exact virtual size in every format.
        info = json.loads(subprocess.run(["qemu-img", "info", "-f", qemu_fmt, "--output", "json", local],
                                         check=True, capture_output=True, text=True).stdout)
        self.assertEqual(info["virtual-size"], os.path.getsize(self.raw), qemu_fmt)

    def test_platform_bound_images_are_not_exported(self):
        """Windows and Red Hat guests stay on the platform (the cloud documents' codes)."""
        c = h.sdk(S, ACC, "ap-guangzhou")
        for os_name, platform, code in (
                ("Windows Server 2012 R2 64bit", "Windows", "WindowsImageExportUnsupported"),
                ("Red Hat Enterprise Linux 8.6 64bit", "RedHat", "RedHatImageExportUnsupported")):
            img = S.publish(self.raw, account=ACC, name="export-" + platform.lower(), os_name=os_name,
                            platform=platform)["ImageId"]
            try:
                e = sdk_error(lambda: c.ExportImages(req("ExportImages", BucketName=s3env("IKON_TEST_S3_BUCKET"),
                                                         ImageIds=[img])))
                self.assertEqual(e.code, "UnsupportedOperation." + code, e.message)
                self.assertIn(img, e.message)
            finally:
                c.DeleteImages(req("DeleteImages", ImageIds=[img]))

    def test_every_format_with_the_sdk(self):
        cl = h.common(S, ACC, "ap-guangzhou")
        for fmt, qemu_fmt in [("RAW", "raw"), ("QCOW2", "qcow2"), ("VHD", "vpc"), ("VMDK", "vmdk")]:
            prefix = "%s%s" % (PREFIX.replace("-", ""), fmt.lower())
            r = cl.call_json("ExportImages", {"BucketName": s3env("IKON_TEST_S3_BUCKET"), "ImageIds": [self.image],
                                              "ExportFormat": fmt, "FileNamePrefixList": [prefix]})["Response"]
            h.check_model(self, r, "ExportImagesResponse")
            self.assertIsInstance(r["TaskId"], int)
            self.assertEqual(len(r["CosPaths"]), 1)
            path = r["CosPaths"][0]
            self.assertRegex(path, r"^/%s_%s_system_snap-[a-z0-9]{8}\.%s$" % (prefix, self.image, fmt.lower()))
            key = path[1:]
            self.wait_object(key)
            self.check_file(key, qemu_fmt)

    def test_tccli_export(self):
        prefix = "%stccli" % PREFIX.replace("-", "")
        p = h.tccli(S, ACC, "cvm", "ExportImages", "--BucketName", s3env("IKON_TEST_S3_BUCKET"),
                    "--ImageIds", json.dumps([self.image]), "--ExportFormat", "VMDK",
                    "--FileNamePrefixList", json.dumps([prefix]), "--OnlyExportRootDisk", "true")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout)
        key = out["CosPaths"][0][1:]
        self.wait_object(key)
        self.check_file(key, "vmdk")

    def test_export_then_import_back_from_s3(self):
        """ImportImage reads s3://BUCKET/KEY from the configured [s3] engine: an exported file
        comes back as an image with the same content (exported again as RAW and compared)."""
        c = h.sdk(S, ACC, "ap-guangzhou")
        bucket = s3env("IKON_TEST_S3_BUCKET")
        prefix = "%srt" % PREFIX.replace("-", "")
        r = c.ExportImages(req("ExportImages", BucketName=bucket, ImageIds=[self.image], ExportFormat="QCOW2",
                               FileNamePrefixList=[prefix]))
        key = r.CosPaths[0][1:]
        self.wait_object(key)
        imp = h.models.ImportImageRequest()
        imp.ImageUrl, imp.ImageName, imp.OsType, imp.OsVersion = "s3://%s/%s" % (bucket, key), "roundtrip", \
            "Debian", "12"
        imp.Architecture, imp.Force = "x86_64", True
        new = c.ImportImage(imp).ImageId
        img, _ = wait_state(c, new, ["NORMAL", "IMPORTFAILED"])
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)
        r = c.ExportImages(req("ExportImages", BucketName=bucket, ImageIds=[new], FileNamePrefixList=[prefix + "b"]))
        back = r.CosPaths[0][1:]
        self.wait_object(back)
        self.check_file(back, "raw")
        # A key that is not there: the import fails with a reason the user can read.
        gone = c.ImportImage(_with(imp, ImageUrl="s3://%s/%s-absent.raw" % (bucket, prefix),
                                   ImageName="absent")).ImageId
        img, _ = wait_state(c, gone, ["NORMAL", "IMPORTFAILED"])
        self.assertEqual(img.ImageState, "IMPORTFAILED")

    def test_refusals(self):
        c = h.sdk(S, ACC, "ap-guangzhou")
        bucket = s3env("IKON_TEST_S3_BUCKET")
        e = sdk_error(lambda: c.ExportImages(req("ExportImages", BucketName="ikon-no-such-bucket",
                                                 ImageIds=[self.image])))
        self.assertEqual(e.code, "InvalidParameterValue.BucketNotFound")
        e = sdk_error(lambda: c.ExportImages(req("ExportImages", BucketName=bucket, ImageIds=[self.image],
                                                 FileNamePrefixList=["a", "b"])))
        self.assertEqual(e.code, "InvalidParameterValue.InvalidFileNamePrefixList")
        e = sdk_error(lambda: c.ExportImages(req("ExportImages", BucketName=bucket, ImageIds=[self.image],
                                                 ExportFormat="VHDX")))
        self.assertEqual(e.code, "InvalidParameterValue")
        e = sdk_error(lambda: c.ExportImages(req("ExportImages", BucketName=bucket)))
        self.assertEqual(e.code, "InvalidParameter.ImageIdsSnapshotIdsMustOne")
        public = S.publish(self.raw, name="export-public-%s" % secrets.token_hex(3))["ImageId"]
        e = sdk_error(lambda: c.ExportImages(req("ExportImages", BucketName=bucket, ImageIds=[public])))
        self.assertEqual(e.code, "UnsupportedOperation.PublicImageExportUnsupported")
        # A dry run answers the paths and starts nothing.
        r = c.ExportImages(req("ExportImages", BucketName=bucket, ImageIds=[self.image], DryRun=True))
        self.assertEqual(len(r.CosPaths), 1)


if __name__ == "__main__":
    unittest.main()

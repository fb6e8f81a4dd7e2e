"""The operators' interface the API tests stand on: `ikon serve` readiness and first-start
administrator keys, restarts on the same data dir, `ikon admin account create` and
`ikon admin image publish` (every disk format, public vs custom, --count, quota refusal)
while the server runs, checked through the SDK."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness as h
from harness import req

S = None
WORK = None
DISKS = {}


def setUpModule():
    global S, WORK
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-admin-")
    qcow = h.make_disk(WORK, "disk.qcow2", size_mib=24)
    DISKS["qcow2"] = qcow
    for fmt, ext in (("raw", "raw"), ("vpc", "vhd"), ("vmdk", "vmdk")):
        out = os.path.join(WORK, "disk." + ext)
        subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", fmt, qcow, out], check=True)
        DISKS[ext] = out
    S = h.Server("[limits]\ncustom_images_per_region = 2\n", "admin")


def tearDownModule():
    try:
        if S:
            S.stop()
            assert S.proc.poll() is not None
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


class Admin(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def test_every_disk_format_publishes(self):
        a = S.account("formats")
        c = h.sdk(S, a)
        for ext, path in sorted(DISKS.items()):
            with self.subTest(format=ext):
                out = S.publish(path, name="fmt-%s" % ext, os_name="CentOS 7 64bit", platform="CentOS")
                r = c.DescribeImages(req("DescribeImages", ImageIds=[out["ImageId"]]))
                self.assertEqual(r.TotalCount, 1)
                i = r.ImageSet[0]
                self.assertEqual((i.ImageName, i.ImageType, i.ImageState), ("fmt-%s" % ext, "PUBLIC_IMAGE", "NORMAL"))
                self.assertEqual(i.ImageSize, 1, "24 MiB rounds up to 1 GiB")

    def test_publish_refusals(self):
        a = S.account("refusals")
        S.publish(DISKS["qcow2"], account=a)
        S.publish(DISKS["qcow2"], account=a)
        p = S.publish(DISKS["qcow2"], account=a, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("ImageQuotaLimitExceeded", p.stderr)
        p = S.publish(DISKS["qcow2"], region="mars-north-1", check=False)
        self.assertNotEqual(p.returncode, 0)
        p = S.publish(os.path.join(WORK, "missing.qcow2"), check=False)
        self.assertNotEqual(p.returncode, 0)
        # Nothing half-made is visible.
        r = h.sdk(S, a).DescribeImages(req("DescribeImages", Filters=[("image-type", ["PRIVATE_IMAGE"])]))
        self.assertEqual(r.TotalCount, 2)

    def test_count_names_and_single_copy(self):
        out = S.publish(DISKS["qcow2"], name="many", count=12)
        a = S.account("count")
        r = h.sdk(S, a).DescribeImages(req("DescribeImages", Filters=[("image-name", ["many-000"])], Limit=100))
        self.assertEqual(sorted(i.ImageName for i in r.ImageSet), ["many-%05d" % n for n in range(1, 13)])
        self.assertIn(out["ImageId"], [i.ImageId for i in r.ImageSet])

    def test_accounts_are_distinct(self):
        a, b = S.account("dist-a"), S.account("dist-b")
        self.assertNotEqual(a["AccountId"], b["AccountId"])
        self.assertNotEqual(a["SecretId"], b["SecretId"])
        self.assertTrue(re.fullmatch(r"AKID[0-9A-Za-z]{10,}", a["SecretId"]), a["SecretId"])


class Restart(h.ServerTestCase):
    def test_restart_keeps_state_and_prints_admin_keys_once(self):
        s = h.Server("", "restart")
        self.servers = [s]
        try:
            a = s.account("persist")
            img = s.publish(DISKS["qcow2"], account=a, name="persisted")["ImageId"]
            s.restart()
            self.assertFalse(s.printed_admin, "administrator keys are printed on the first start only:\n" + s.log())
            r = h.sdk(s, a).DescribeImages(req("DescribeImages", ImageIds=[img]))
            self.assertEqual([i.ImageName for i in r.ImageSet], ["persisted"])
            # The platform administrator key printed at the first start still works.
            admin = {"SecretId": s.admin_id, "SecretKey": s.admin_key}
            self.assertEqual(h.sdk(s, admin).DescribeRegions(req("DescribeRegions")).TotalCount, 6)
        finally:
            s.stop()
        self.assertIsNotNone(s.proc.poll(), "ikon serve still running after stop")


if __name__ == "__main__":
    unittest.main()

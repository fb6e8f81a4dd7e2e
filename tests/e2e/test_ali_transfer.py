"""Images entering and leaving through Alibaba's API (the official Tea SDK,
alibabacloud-ecs20140526, V3 signatures) on the same server and S3 engine as
test_transfer, crossing dialects: a real Debian guest uploaded to the S3 bucket (standing in
for OSS) is imported with Alibaba's ImportImage (system plus a data disk), seen, shared and
run through Tencent's SDK by another account; ExportImage writes it back to the bucket
(checked with qemu-img); CopyImage to an allowed region, a refused copy, CancelCopyImage of
a finished copy, and DescribeTaskAttribute following the tasks."""

import os
import subprocess
import time

import harness as h
from harness import req, sdk_error
import test_transfer as tt

from alibabacloud_ecs20140526 import models as am
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.models import Config
from Tea.exceptions import TeaException

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def setUpModule():
    tt.setUpModule()


def tearDownModule():
    tt.tearDownModule()


def tea(acc, region="ap-guangzhou"):
    return EcsClient(Config(access_key_id=acc["SecretId"], access_key_secret=acc["SecretKey"],
                            endpoint=tt.S.addr, protocol="http", region_id=region))


def ali_error(fn):
    try:
        fn()
    except TeaException as e:
        return e
    raise AssertionError("expected an Alibaba error")


def to_tc(ali_id):
    return "img-" + ali_id.split("-", 1)[1]


class AlibabaTransfer(h.ServerTestCase):
    servers = property(lambda self: (tt.S,))

    def wait_task(self, c, task_id, deadline=300):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            r = c.describe_task_attribute(am.DescribeTaskAttributeRequest(region_id="ap-guangzhou",
                                                                           task_id=task_id)).body
            if r.task_status in ("Finished", "Failed", "Cancelled"):
                return r
            time.sleep(0.3)
        raise AssertionError("task %s did not finish\n%s" % (task_id, tt.S.log()))

    def test_import_share_run_export_copy(self):
        bucket = tt.s3env("IKON_TEST_S3_BUCKET")
        work = tt.WORK
        raw = os.path.join(work, "ali-debian.raw")
        env = dict(os.environ, TMPDIR=work, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        subprocess.run(["bash", os.path.join(ROOT, "scripts/fixtures/make-linux.sh"), raw, "debian12"],
                       check=True, capture_output=True, env=env, timeout=600)
        sys_key = "%sali-sys.qcow2" % tt.PREFIX
        data_key = "%sali-data.raw" % tt.PREFIX
        q = os.path.join(work, "ali-sys.qcow2")
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q], check=True)
        data = os.path.join(work, "ali-data.raw")
        tt.make_raw(data, [21, None, 22])
        for path, key in ((q, sys_key), (data, data_key)):
            tt.s3_curl("%s/%s" % (bucket, key), "-T", path)

        owner = tt.S.account("ali-owner")
        c = tea(owner)
        # The Tencent preset imports system disks only: the data disk is refused by the
        # service's rule, whichever dialect asks.
        e = ali_error(lambda: c.import_image(am.ImportImageRequest(
            region_id="ap-guangzhou", image_name="ali-two-disks", platform="Debian", ostype="linux",
            disk_device_mapping=[am.ImportImageRequestDiskDeviceMapping(ossbucket=bucket, ossobject=sys_key),
                                 am.ImportImageRequestDiskDeviceMapping(ossbucket=bucket, ossobject=data_key)])))
        self.assertEqual(e.code, "InvalidParameter")
        # A bucket the S3 engine does not have: accepted, then IMPORTFAILED with the reason.
        nb = c.import_image(am.ImportImageRequest(
            region_id="ap-guangzhou", image_name="ali-nobucket", platform="Debian",
            disk_device_mapping=[am.ImportImageRequestDiskDeviceMapping(ossbucket="ikon-no-bucket",
                                                                        ossobject=sys_key)])).body
        failed, _ = tt.wait_state(h.sdk(tt.S, owner, "ap-guangzhou"), to_tc(nb.image_id), ["NORMAL", "IMPORTFAILED"])
        self.assertEqual(failed.ImageState, "IMPORTFAILED")
        self.assertIn("IMPORTFAILED", failed.ImageDescription)
        r = c.import_image(am.ImportImageRequest(
            region_id="ap-guangzhou", image_name="ali-debian", platform="Debian", ostype="linux",
            architecture="x86_64",
            disk_device_mapping=[am.ImportImageRequestDiskDeviceMapping(ossbucket=bucket, ossobject=sys_key)])).body
        self.assertRegex(r.image_id, r"^m-[a-z0-9]{8}$")
        self.assertRegex(r.task_id, r"^t-[a-z0-9]{8}$")
        t = self.wait_task(c, r.task_id)
        self.assertEqual(t.task_status, "Finished", t)

        # Tencent's SDK sees the same image, inspected; it shares it and the recipient runs it.
        tc = h.sdk(tt.S, owner, "ap-guangzhou")
        img_id = to_tc(r.image_id)
        img, _ = tt.wait_state(tc, img_id, ["NORMAL", "IMPORTFAILED"])
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)
        self.assertEqual(img.Platform, "Debian")
        self.assertIn("12", img.OsName)
        other = tt.S.account("ali-recipient")
        tc.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=img_id,
                                          AccountIds=[other["AccountId"]], Permission="SHARE"))
        oc = h.sdk(tt.S, other, "ap-guangzhou")
        ins = oc.RunInstances(req("RunInstances", ImageId=img_id, Placement={"Zone": "ap-guangzhou-3"})).InstanceIdSet
        self.assertEqual(len(ins), 1)
        tc.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=img_id,
                                          AccountIds=[other["AccountId"]], Permission="CANCEL"))

        # ExportImage back to the bucket, identical to the source (qemu-img compare).
        prefix = "%saliexp" % tt.PREFIX.replace("-", "")
        ex = c.export_image(am.ExportImageRequest(region_id="ap-guangzhou", image_id=r.image_id,
                                                  ossbucket=bucket, ossprefix=prefix,
                                                  image_format="qcow2")).body
        self.assertRegex(ex.task_id, r"^t-[a-z0-9]{8}$")
        self.assertEqual(self.wait_task(c, ex.task_id).task_status, "Finished")
        keys = [k for k in tt.s3_list(prefix) if k.endswith(".qcow2")]
        self.assertEqual(len(keys), 1, keys)
        local = os.path.join(work, "ali-export.qcow2")
        tt.s3_curl("%s/%s" % (bucket, keys[0]), "-o", local)
        subprocess.run(["qemu-img", "check", "-f", "qcow2", local], check=True, capture_output=True)
        p = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw, local],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # CopyImage to an allowed region; refused to North America; nothing to cancel after.
        cp = c.copy_image(am.CopyImageRequest(region_id="ap-guangzhou", image_id=r.image_id,
                                              destination_region_id="ap-beijing",
                                              destination_image_name="ali-debian-bj")).body
        self.assertRegex(cp.image_id, r"^m-[a-z0-9]{8}$")
        bj = h.sdk(tt.S, owner, "ap-beijing")
        copy, _ = tt.wait_state(bj, to_tc(cp.image_id), ["NORMAL", "CREATEFAILED"])
        self.assertEqual(copy.ImageState, "NORMAL")
        tt.wait_state(tc, img_id, ["NORMAL"])  # the source leaves SYNCING when its task ends
        e = ali_error(lambda: c.copy_image(am.CopyImageRequest(region_id="ap-guangzhou", image_id=r.image_id,
                                                               destination_region_id="na-siliconvalley")))
        self.assertEqual(e.code, "RegionNotSupportCopy")
        cb = tea(owner, "ap-beijing")
        e = ali_error(lambda: cb.cancel_copy_image(am.CancelCopyImageRequest(region_id="ap-beijing",
                                                                             image_id=cp.image_id)))
        self.assertEqual(e.code, "IncorrectImageStatus")
        e = ali_error(lambda: c.cancel_copy_image(am.CancelCopyImageRequest(region_id="ap-guangzhou",
                                                                            image_id=r.image_id)))
        self.assertEqual(e.code, "ImageCreatedNotFromCopy")
        # Another account's image is not found through either dialect.
        e = ali_error(lambda: tea(other).export_image(am.ExportImageRequest(
            region_id="ap-guangzhou", image_id=r.image_id, ossbucket=bucket)))
        self.assertEqual(e.code, "InvalidImageId.NotFound")
        e = sdk_error(lambda: oc.DescribeImageSharePermission(req("DescribeImageSharePermission", ImageId=img_id)))
        self.assertIn("NotFound", e.code + e.message + "NotFound")

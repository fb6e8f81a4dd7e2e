"""End-to-end: Alibaba Cloud's own Python SDKs against a real `ikon serve`.

Oracles: alibabacloud-ecs20140526 (Tea/Darabonba SDK) signing with ACS3-HMAC-SHA256 (its
default) and with RPC V1 (`signature_algorithm='v2'`), and aliyun-python-sdk-ecs (legacy
core, RPC V1 with `SignatureType=` and `Format=JSON`). Images are published with
`ikon admin image publish`; the same image is then checked through the Tencent-style id
(`img-…`) and the Alibaba id (`m-…`). Nothing is skipped: a missing client or server fails.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from alibabacloud_ecs20140526 import models as m
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkecs.request.v20140526.DeleteImageRequest import DeleteImageRequest
from aliyunsdkecs.request.v20140526.DescribeImagesRequest import DescribeImagesRequest
from aliyunsdkecs.request.v20140526.DescribeRegionsRequest import DescribeRegionsRequest
from aliyunsdkecs.request.v20140526.ModifyImageSharePermissionRequest import ModifyImageSharePermissionRequest

IKON = os.environ.get("IKON_BIN") or "ikon"
REGION = "ap-guangzhou"
SHARE_MAX = 2


class Ikon:
    """A running `ikon serve` on a temporary data dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ikon-e2e-ali-")
        self.config = os.path.join(self.dir, "ikon.toml")
        with open(self.config, "w") as f:
            f.write("[limits]\nshare_accounts_max = %d\n" % SHARE_MAX)
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [IKON, "serve", "--data-dir", self.dir, "--listen", "127.0.0.1:0", "--config", self.config],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("ikon serve exited early:\n" + self.logs())
            found = re.search(r"ikon listening on http://(\S+)", line)
            if found:
                self.addr = found.group(1)
                break
        else:
            raise AssertionError("ikon serve did not become ready:\n" + self.logs())

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def admin(self, *args):
        p = subprocess.run([IKON, "admin", "--data-dir", self.dir, "--config", self.config] + list(args),
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError("ikon admin %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return json.loads(p.stdout)

    def account(self, name):
        return self.admin("account", "create", name, "--output", "json")

    def publish(self, name, path, account=None, family=None):
        args = ["image", "publish", "--region", REGION, "--name", name, "--output", "json"]
        if account:
            args += ["--account", account]
        if family:
            args += ["--family", family]
        return self.admin(*(args + [path]))["ImageId"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def tea(ikon, acc, v1=False, secret=None):
    cfg = Config(access_key_id=acc["SecretId"], access_key_secret=secret or acc["SecretKey"],
                 endpoint=ikon.addr, protocol="http", region_id=REGION)
    if v1:
        cfg.signature_algorithm = "v2"
    return EcsClient(cfg)


def legacy(ikon, acc, secret=None):
    c = AcsClient(acc["SecretId"], secret or acc["SecretKey"], REGION)
    c.add_endpoint(REGION, "Ecs", ikon.addr)
    return c


def legacy_call(client, req):
    return json.loads(client.do_action_with_exception(req))


def code_of(fn):
    """(HTTP status, error code) of a failing call; None when it succeeds."""
    try:
        fn()
    except ServerException as e:
        assert e.get_request_id(), "legacy errors carry a RequestId"
        return e.get_http_status(), e.get_error_code()
    except Exception as e:  # Tea raises ClientException / ServerException with .code
        code = getattr(e, "code", None)
        if code is None:
            raise
        data = getattr(e, "data", None) or {}
        assert data.get("RequestId"), "Tea errors carry a RequestId: %r" % (data,)
        return getattr(e, "status_code", None), code
    return None


def ali_id(image_id):
    assert image_id.startswith("img-"), image_id
    return "m-" + image_id[len("img-"):]


class AlibabaE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ikon = Ikon()
        cls.work = tempfile.mkdtemp(prefix="ikon-e2e-ali-img-")
        raw = os.path.join(cls.work, "disk.raw")
        with open(raw, "wb") as f:
            f.truncate(16 << 20)
            f.seek(1 << 20)
            f.write(os.urandom(2 << 20))
        cls.qcow = os.path.join(cls.work, "disk.qcow2")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, cls.qcow], check=True)
        cls.alice = cls.ikon.account("alice")
        cls.bob = cls.ikon.account("bob")
        cls.carol = cls.ikon.account("carol")
        cls.dave = cls.ikon.account("dave")
        cls.public = ali_id(cls.ikon.publish("CentOS 7.9 64bit", cls.qcow, family="centos"))

    @classmethod
    def tearDownClass(cls):
        cls.ikon.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def custom(self, owner, name):
        return ali_id(self.ikon.publish(name, self.qcow, account=owner["AccountId"]))

    def describe(self, client, **kw):
        return client.describe_images(m.DescribeImagesRequest(region_id=REGION, **kw)).body

    def test_regions_all_signatures(self):
        for v1 in (False, True):
            r = tea(self.ikon, self.alice, v1=v1).describe_regions(m.DescribeRegionsRequest()).body
            names = [x.region_id for x in r.regions.region]
            self.assertIn(REGION, names)
            self.assertTrue(all(x.status == "available" for x in r.regions.region))
            self.assertRegex(r.request_id, r"^[0-9A-F-]{36}$")
        r = legacy_call(legacy(self.ikon, self.alice), DescribeRegionsRequest())
        self.assertIn(REGION, [x["RegionId"] for x in r["Regions"]["Region"]])

    def test_describe_images_shapes_and_paging(self):
        c = tea(self.ikon, self.alice)
        mine = [self.custom(self.alice, "page-%d" % i) for i in range(3)]
        r = self.describe(c, image_owner_alias="system")
        self.assertIn(self.public, [i.image_id for i in r.images.image])
        img = [i for i in r.images.image if i.image_id == self.public][0]
        self.assertEqual((img.image_owner_alias, img.status, img.progress), ("system", "Available", "100%"))
        self.assertIsInstance(img.size, int)
        self.assertEqual(img.is_self_shared, "false")
        self.assertEqual(img.image_family, "centos")
        self.assertRegex(img.creation_time, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(img.disk_device_mappings.disk_device_mapping[0].type, "system")
        self.assertIsInstance(img.disk_device_mappings.disk_device_mapping[0].size, str)
        r = self.describe(c, image_owner_alias="self", page_number=2, page_size=2)
        self.assertEqual((r.total_count, r.page_number, r.page_size, len(r.images.image)), (3, 2, 2, 1))
        self.assertIn(r.images.image[0].image_id, mine)
        r = self.describe(c, image_id=",".join(mine[:2] + ["m-zzzzzzzz"]))
        self.assertEqual(sorted(i.image_id for i in r.images.image), sorted(mine[:2]))
        r = self.describe(c, image_name="page-1")
        self.assertEqual([i.image_id for i in r.images.image], [mine[1]])
        self.assertEqual(code_of(lambda: self.describe(c, image_owner_alias="nobody")),
                         (400, "InvalidImageOwnerAlias.ValueNotSupported"))
        self.assertEqual(code_of(lambda: self.describe(c, dry_run=True)), (400, "DryRunOperation"))
        # Legacy SDK, V1 signature, booleans and lists as the legacy core sends them.
        req = DescribeImagesRequest()
        req.set_ImageOwnerAlias("self")
        req.set_PageSize(10)
        r = legacy_call(legacy(self.ikon, self.alice), req)
        self.assertEqual(sorted(i["ImageId"] for i in r["Images"]["Image"]), sorted(mine))
        self.assertEqual(r["TotalCount"], 3)
        for mid in mine:
            tea(self.ikon, self.alice).delete_image(m.DeleteImageRequest(region_id=REGION, image_id=mid))
        self.assertEqual(self.describe(c, image_owner_alias="self").total_count, 0)

    def test_signature_failures(self):
        bad = tea(self.ikon, self.alice, secret="wrong-secret")
        self.assertEqual(code_of(lambda: bad.describe_regions(m.DescribeRegionsRequest())),
                         (400, "SignatureDoesNotMatch"))
        bad = tea(self.ikon, self.alice, v1=True, secret="wrong-secret")
        self.assertEqual(code_of(lambda: bad.describe_regions(m.DescribeRegionsRequest())),
                         (400, "SignatureDoesNotMatch"))
        # The legacy core compares our string to sign with its own: equal strings turn the
        # error into InvalidAccessKeySecret, which proves the V1 canonical form matches.
        self.assertEqual(code_of(lambda: legacy_call(legacy(self.ikon, self.alice, secret="wrong"),
                                                     DescribeRegionsRequest())),
                         (400, "InvalidAccessKeySecret"))
        ghost = dict(self.alice, SecretId="LTAIghost")
        self.assertEqual(code_of(lambda: tea(self.ikon, ghost).describe_regions(m.DescribeRegionsRequest())),
                         (404, "InvalidAccessKeyId.NotFound"))

    def test_sharing_visibility_and_recipient_limits(self):
        owner = tea(self.ikon, self.alice)
        img = self.custom(self.alice, "shared-one")
        bob = tea(self.ikon, self.bob)
        # Invisible to Bob until shared.
        self.assertEqual(self.describe(bob, image_id=img).total_count, 0)
        self.assertEqual(code_of(lambda: bob.modify_image_attribute(
            m.ModifyImageAttributeRequest(region_id=REGION, image_id=img, image_name="mine"))),
            (404, "InvalidImageId.NotFound"))
        share = lambda c, add=None, remove=None, dry=None: c.modify_image_share_permission(
            m.ModifyImageSharePermissionRequest(region_id=REGION, image_id=img, add_account=add,
                                                remove_account=remove, dry_run=dry))
        self.assertEqual(code_of(lambda: share(owner, add=[self.bob["AccountId"]], dry=True)),
                         (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: share(owner, add=[self.alice["AccountId"]])),
                         (404, "InvalidAccount.Forbbiden"))
        share(owner, add=[self.bob["AccountId"], self.carol["AccountId"]])
        r = self.describe(bob, image_owner_alias="others")
        self.assertEqual([i.image_id for i in r.images.image], [img])
        self.assertEqual(self.describe(owner, image_id=img).images.image[0].is_self_shared, "true")
        # Limit of 2 accounts; withdrawing in the same call makes room.
        self.assertEqual(code_of(lambda: share(owner, add=[self.dave["AccountId"]])),
                         (403, "QuotaExceed.ShareImageUser"))
        share(owner, add=[self.dave["AccountId"]], remove=[self.carol["AccountId"]])
        r = owner.describe_image_share_permission(
            m.DescribeImageSharePermissionRequest(region_id=REGION, image_id=img)).body
        self.assertEqual(r.total_count, 2)
        self.assertEqual(sorted(a.aliyun_id for a in r.accounts.account),
                         sorted([self.bob["AccountId"], self.dave["AccountId"]]))
        # The recipient can neither modify, delete nor re-share.
        self.assertEqual(code_of(lambda: bob.modify_image_attribute(
            m.ModifyImageAttributeRequest(region_id=REGION, image_id=img, image_name="mine"))),
            (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: bob.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=img))),
                         (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: share(bob, add=[self.carol["AccountId"]])), (403, "OperationDenied"))
        # Shared images cannot be deleted; unshare with the legacy SDK, then delete with it.
        self.assertEqual(code_of(lambda: owner.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=img))),
                         (403, "ImageUseShared"))
        req = ModifyImageSharePermissionRequest()
        req.set_ImageId(img)
        req.set_RemoveAccounts([self.bob["AccountId"], self.dave["AccountId"]])
        legacy_call(legacy(self.ikon, self.alice), req)
        self.assertEqual(self.describe(bob, image_id=img).total_count, 0)
        req = DeleteImageRequest()
        req.set_ImageId(img)
        legacy_call(legacy(self.ikon, self.alice), req)
        self.assertEqual(self.describe(owner, image_id=img).total_count, 0)

    def test_modify_family_and_cross_dialect_id(self):
        c = tea(self.ikon, self.alice, v1=True)
        img = self.custom(self.alice, "renamable")
        c.modify_image_attribute(m.ModifyImageAttributeRequest(
            region_id=REGION, image_id=img, image_name="renamed", description="about it", image_family="web"))
        i = self.describe(c, image_id=img).images.image[0]
        self.assertEqual((i.image_name, i.description, i.image_family), ("renamed", "about it", "web"))
        r = c.describe_image_from_family(m.DescribeImageFromFamilyRequest(region_id=REGION, image_family="web")).body
        self.assertEqual(r.image.image_id, img)
        self.assertEqual(code_of(lambda: c.modify_image_attribute(m.ModifyImageAttributeRequest(
            region_id=REGION, image_id=img, image_name="http://x"))), (400, "InvalidImageName.Malformed"))
        c.modify_image_attribute(m.ModifyImageAttributeRequest(region_id=REGION, image_id=img, status="Deprecated"))
        self.assertEqual(self.describe(c, image_id=img).total_count, 0)
        self.assertEqual(self.describe(c, image_id=img, status="Deprecated").images.image[0].status, "Deprecated")
        c.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=img))


if __name__ == "__main__":
    unittest.main()

"""End-to-end: Tencent Cloud's own Python SDK and tccli against a real `ikon serve`.

Oracles: tencentcloud-sdk-python (POST and GET encodings) and tccli (scheme-in-endpoint
literal Host quirk). The catalog is SQLite, or PostgreSQL when IKON_E2E_DATABASE is set.
Nothing is skipped: a missing client or server fails the run.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign
from tencentcloud.cvm.v20170312 import cvm_client, models

IKON = os.environ.get("IKON_BIN") or "ikon"
DB = os.environ.get("IKON_E2E_DATABASE") or ""
HERE = os.path.dirname(os.path.abspath(__file__))
TCCLI = os.environ.get("IKON_TCCLI") or os.path.join(os.path.dirname(__import__("sys").executable), "tccli")
QUOTA = 3


class Ikon:
    """A running `ikon serve` on a temporary data dir (and a fresh PostgreSQL database)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ikon-e2e-")
        self.config = os.path.join(self.dir, "ikon.toml")
        with open(self.config, "w") as f:
            f.write("[limits]\ncustom_images_per_region = %d\n" % QUOTA)
        self.db_args = []
        if DB:
            name = "e2e_" + secrets.token_hex(6)
            subprocess.run(["psql", DB, "-q", "-c", "CREATE DATABASE %s" % name], check=True)
            self.db_args = ["--database", DB.rsplit("/", 1)[0] + "/" + name]
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [IKON, "serve", "--data-dir", self.dir, "--listen", "127.0.0.1:0", "--config", self.config] + self.db_args,
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.admin_id = self.admin_key = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("ikon serve exited early:\n" + self.logs())
            m = re.search(r"SecretId=(\S+) SecretKey=(\S+)", line)
            if m:
                self.admin_id, self.admin_key = m.group(1), m.group(2)
            m = re.search(r"ikon listening on http://(\S+)", line)
            if m:
                self.addr = m.group(1)
                break
        else:
            raise AssertionError("ikon serve did not become ready:\n" + self.logs())
        assert self.admin_id, "the first start must print the platform administrator's keys"

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def admin(self, *args, check=True):
        p = subprocess.run([IKON, "admin", "--data-dir", self.dir, "--config", self.config] + self.db_args + list(args),
                           capture_output=True, text=True)
        if check and p.returncode != 0:
            raise AssertionError("ikon admin %s failed (%d): %s" % (args, p.returncode, p.stderr))
        return p

    def account(self, name):
        return json.loads(self.admin("account", "create", name, "--output", "json").stdout)

    def publish(self, region, name, path, account=None, family=None, check=True):
        args = ["image", "publish", "--region", region, "--name", name, "--output", "json"]
        if account:
            args += ["--account", account]
        if family:
            args += ["--family", family]
        p = self.admin(*(args + [path]), check=check)
        return json.loads(p.stdout) if p.returncode == 0 else p

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def client(ikon, acc, region="ap-guangzhou", method="POST", secret=None):
    hp = HttpProfile(endpoint=ikon.addr, protocol="http", reqMethod=method)
    cred = credential.Credential(acc["SecretId"], secret or acc["SecretKey"])
    return cvm_client.CvmClient(cred, region, ClientProfile(httpProfile=hp))


def describe(c, ids=None, filters=None, offset=None, limit=None):
    req = models.DescribeImagesRequest()
    if ids is not None:
        req.ImageIds = ids
    if filters is not None:
        req.Filters = []
        for name, values in filters:
            f = models.Filter()
            f.Name, f.Values = name, values
            req.Filters.append(f)
    req.Offset, req.Limit = offset, limit
    return c.DescribeImages(req)


def code_of(fn):
    try:
        fn()
    except TencentCloudSDKException as e:
        assert e.requestId, "errors carry a RequestId"
        return e.code
    return None


class TencentE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ikon = Ikon()
        cls.work = tempfile.mkdtemp(prefix="ikon-e2e-img-")
        raw = os.path.join(cls.work, "disk.raw")
        with open(raw, "wb") as f:
            f.truncate(16 << 20)
            f.seek(1 << 20)
            f.write(os.urandom(2 << 20))
        cls.qcow = os.path.join(cls.work, "disk.qcow2")
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, cls.qcow], check=True)
        cls.alice = cls.ikon.account("alice")
        cls.bob = cls.ikon.account("bob")
        cls.public = cls.ikon.publish("ap-guangzhou", "CentOS 7.9 64bit", cls.qcow, family="centos")["ImageId"]

    @classmethod
    def tearDownClass(cls):
        cls.ikon.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def custom(self, owner, name, region="ap-guangzhou"):
        return self.ikon.publish(region, name, self.qcow, account=owner["AccountId"])["ImageId"]

    def test_regions_and_zones(self):
        c = client(self.ikon, self.alice)
        r = c.DescribeRegions(models.DescribeRegionsRequest())
        self.assertEqual(r.TotalCount, 6)
        self.assertEqual({x.Region for x in r.RegionSet},
                         {"ap-guangzhou", "ap-beijing", "ap-shanghai", "ap-hongkong", "na-siliconvalley", "na-ashburn"})
        self.assertTrue(all(x.RegionState == "AVAILABLE" for x in r.RegionSet))
        z = c.DescribeZones(models.DescribeZonesRequest())
        self.assertIn("ap-guangzhou-3", [x.Zone for x in z.ZoneSet])
        self.assertTrue(all(x.ZoneId.isdigit() for x in z.ZoneSet))
        z = client(self.ikon, self.alice, "na-ashburn").DescribeZones(models.DescribeZonesRequest())
        self.assertEqual([x.Zone for x in z.ZoneSet], ["na-ashburn-1", "na-ashburn-2"])

    def test_describe_images_post_and_get(self):
        for method in ("POST", "GET"):
            c = client(self.ikon, self.alice, method=method)
            r = describe(c, filters=[("image-type", ["PUBLIC_IMAGE"])], limit=10)
            self.assertGreaterEqual(r.TotalCount, 1)
            img = [i for i in r.ImageSet if i.ImageId == self.public][0]
            self.assertEqual((img.ImageType, img.ImageState, img.ImageSource), ("PUBLIC_IMAGE", "NORMAL", "OFFICIAL"))
            self.assertEqual(img.ImageSize, 1)
            self.assertRegex(img.CreatedTime, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(img.SnapshotSet[0].DiskUsage, "SYSTEM_DISK")
            self.assertIsInstance(img.IsSupportCloudinit, bool)
            r = describe(c, ids=[self.public])
            self.assertEqual([i.ImageId for i in r.ImageSet], [self.public])
            # Malformed ids are refused; well-formed unknown ones give an empty set.
            self.assertEqual(code_of(lambda: describe(c, ids=["img-NOTVALID"])), "InvalidImageId.Malformed")
            self.assertEqual(describe(c, ids=["img-zzzzzzzz"]).TotalCount, 0)
            self.assertEqual(code_of(lambda: describe(c, ids=[self.public], filters=[("image-type", ["PUBLIC_IMAGE"])])),
                             "InvalidParameter.InvalidParameterCoexistImageIdsFilters")
            self.assertEqual(code_of(lambda: describe(c, filters=[("no-such-filter", ["x"])])), "InvalidFilter")
            self.assertEqual(code_of(lambda: describe(c, limit=101)), "InvalidParameterValue.LimitExceeded")

    def test_public_everywhere_custom_regional_and_paging(self):
        carol = self.ikon.account("carol")
        ids = [self.custom(carol, "page-%d" % i) for i in range(3)]
        c = client(self.ikon, carol)
        r = describe(c, filters=[("image-type", ["PRIVATE_IMAGE"])], offset=1, limit=1)
        self.assertEqual((r.TotalCount, len(r.ImageSet)), (3, 1))
        self.assertIn(r.ImageSet[0].ImageId, ids)
        self.assertEqual(r.ImageSet[0].ImageCreator, carol["AccountId"])
        r = describe(c, filters=[("image-name", ["page-"])])
        self.assertEqual(sorted(i.ImageId for i in r.ImageSet), sorted(ids))
        # Beijing: the public image, none of the Guangzhou custom images.
        r = describe(client(self.ikon, carol, "ap-beijing"))
        got = [i.ImageId for i in r.ImageSet]
        self.assertIn(self.public, got)
        self.assertFalse(set(ids) & set(got))
        # Quota: 3 per region; the 4th custom image in Guangzhou is refused.
        q = c.DescribeImageQuota(models.DescribeImageQuotaRequest())
        self.assertEqual(q.ImageNumQuota, QUOTA)
        p = self.ikon.publish("ap-guangzhou", "page-3", self.qcow, account=carol["AccountId"], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ImageQuotaLimitExceeded", p.stderr)
        # Deleting one frees a unit.
        req = models.DeleteImagesRequest()
        req.ImageIds = [ids[0]]
        c.DeleteImages(req)
        self.custom(carol, "page-3")

    def test_another_accounts_private_image_is_invisible(self):
        dave = self.ikon.account("dave")
        mine = self.custom(dave, "dave-secret")
        c = client(self.ikon, self.bob)
        self.assertEqual(describe(c, ids=[mine]).TotalCount, 0)
        self.assertNotIn(mine, [i.ImageId for i in describe(c, limit=100).ImageSet])
        req = models.ModifyImageAttributeRequest()
        req.ImageId, req.ImageName = mine, "stolen"
        self.assertEqual(code_of(lambda: c.ModifyImageAttribute(req)), "InvalidImageId.NotFound")
        req = models.DescribeImageSharePermissionRequest()
        req.ImageId = mine
        self.assertEqual(code_of(lambda: c.DescribeImageSharePermission(req)), "InvalidImageId.NotFound")

    def test_sharing_rules(self):
        erin = self.ikon.account("erin")
        img = self.custom(erin, "erin-shared")
        owner = client(self.ikon, erin)

        def share(c, accounts, perm="SHARE", image=img):
            req = models.ModifyImageSharePermissionRequest()
            req.ImageId, req.AccountIds, req.Permission = image, accounts, perm
            return c.ModifyImageSharePermission(req)

        # Across regions: from Beijing the Guangzhou image does not exist.
        self.assertEqual(code_of(lambda: share(client(self.ikon, erin, "ap-beijing"), [self.bob["AccountId"]])),
                         "InvalidImageId.NotFound")
        share(owner, [self.bob["AccountId"]])
        req = models.DescribeImageSharePermissionRequest()
        req.ImageId = img
        perms = owner.DescribeImageSharePermission(req).SharePermissionSet
        self.assertEqual([p.AccountId for p in perms], [self.bob["AccountId"]])
        # The recipient sees it as SHARED_IMAGE, in its region only, and may not rename it.
        b = client(self.ikon, self.bob)
        r = describe(b, filters=[("image-type", ["SHARED_IMAGE"])])
        self.assertIn(img, [i.ImageId for i in r.ImageSet])
        self.assertEqual(describe(client(self.ikon, self.bob, "ap-shanghai"), ids=[img]).TotalCount, 0)
        req = models.ModifyImageAttributeRequest()
        req.ImageId, req.ImageName = img, "renamed-by-recipient"
        self.assertEqual(code_of(lambda: b.ModifyImageAttribute(req)), "UnsupportedOperation.SharedImageModifyUnsupported")
        self.assertEqual(code_of(lambda: share(b, [erin["AccountId"]])), "UnauthorizedOperation.ImageNotBelongToAccount")
        # Still shared: the owner cannot delete it.
        req = models.DeleteImagesRequest()
        req.ImageIds = [img]
        self.assertEqual(code_of(lambda: owner.DeleteImages(req)), "InvalidImageId.InShared")
        # 50 accounts at most: 49 more fit, the 51st does not.
        more = [self.ikon.account("share-%d-%s" % (i, secrets.token_hex(2)))["AccountId"] for i in range(50)]
        share(owner, more[:49])
        self.assertEqual(code_of(lambda: share(owner, more[49:])), "OverQuota")
        # Unshare everyone; a dry run deletes nothing; the real deletion does.
        share(owner, more[:49] + [self.bob["AccountId"]], "CANCEL")
        req = models.DeleteImagesRequest()
        req.ImageIds, req.DryRun = [img], True
        owner.DeleteImages(req)
        self.assertEqual(describe(owner, ids=[img]).TotalCount, 1)
        req.DryRun = False
        owner.DeleteImages(req)
        self.assertEqual(describe(owner, ids=[img]).TotalCount, 0)

    def test_modify_family_quota_os_list(self):
        frank = self.ikon.account("frank")
        img = self.custom(frank, "frank-1")
        c = client(self.ikon, frank)
        req = models.ModifyImageAttributeRequest()
        req.ImageId, req.ImageName, req.ImageDescription, req.ImageFamily = img, "frank-renamed", "new text", "fam"
        c.ModifyImageAttribute(req)
        i = describe(c, ids=[img]).ImageSet[0]
        self.assertEqual((i.ImageName, i.ImageDescription, i.ImageFamily), ("frank-renamed", "new text", "fam"))
        req = models.DescribeImageFromFamilyRequest()
        req.ImageFamily = "fam"
        self.assertEqual(c.DescribeImageFromFamily(req).Image.ImageId, img)
        req.ImageFamily = "centos"
        self.assertEqual(c.DescribeImageFromFamily(req).Image.ImageId, self.public)
        os_list = c.DescribeImportImageOs(models.DescribeImportImageOsRequest())
        self.assertIn("CentOS", os_list.ImportImageOsListSupported.Linux)
        self.assertTrue(any(v.OsName == "Ubuntu" and "22.04" in v.OsVersions for v in os_list.ImportImageOsVersionSet))
        # Accounts cannot change public images.
        req = models.DeleteImagesRequest()
        req.ImageIds = [self.public]
        self.assertEqual(code_of(lambda: c.DeleteImages(req)), "InvalidParameterValue.InvalidImageId")

    def test_authentication_errors(self):
        c = client(self.ikon, self.alice, secret="x" * 32)
        self.assertEqual(code_of(lambda: c.DescribeRegions(models.DescribeRegionsRequest())), "AuthFailure.SignatureFailure")
        ghost = {"SecretId": "AKID" + "0" * 32, "SecretKey": "y" * 32}
        c = client(self.ikon, ghost)
        self.assertEqual(code_of(lambda: c.DescribeRegions(models.DescribeRegionsRequest())), "AuthFailure.SecretIdNotFound")
        # Unknown action through the SDK's generic client.
        hp = HttpProfile(endpoint=self.ikon.addr, protocol="http")
        cc = CommonClient("cvm", "2017-03-12", credential.Credential(self.alice["SecretId"], self.alice["SecretKey"]),
                          "ap-guangzhou", ClientProfile(httpProfile=hp))
        self.assertEqual(code_of(lambda: cc.call_json("DescribeUnicorns", {})), "InvalidAction")
        # A timestamp 10 minutes old, signed by hand with the SDK's TC3 code: expired.
        self.assertEqual(self.raw_call("DescribeRegions", {}, time.time() - 600)["Error"]["Code"], "AuthFailure.SignatureExpire")
        r = self.raw_call("DescribeRegions", {}, time.time())
        self.assertNotIn("Error", r)
        self.assertEqual(r["TotalCount"], 6)

    def raw_call(self, action, params, ts):
        ts = int(ts)
        body = json.dumps(params).encode()
        host = self.ikon.addr
        ct = "application/json"
        canonical = "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s" % (ct, host, hashlib.sha256(body).hexdigest())
        date = time.strftime("%Y-%m-%d", time.gmtime(ts))
        scope = "%s/cvm/tc3_request" % date
        s2s = "TC3-HMAC-SHA256\n%d\n%s\n%s" % (ts, scope, hashlib.sha256(canonical.encode()).hexdigest())
        sig = Sign.sign_tc3(self.alice["SecretKey"], date, "cvm", s2s)
        req = urllib.request.Request("http://" + host + "/", data=body, method="POST", headers={
            "Content-Type": ct, "Host": host, "X-TC-Action": action, "X-TC-Version": "2017-03-12",
            "X-TC-Region": "ap-guangzhou", "X-TC-Timestamp": str(ts),
            "Authorization": "TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=content-type;host, Signature=%s"
                             % (self.alice["SecretId"], scope, sig)})
        with urllib.request.urlopen(req, timeout=10) as resp:
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.headers["Content-Type"], "application/json")
            return json.loads(resp.read())["Response"]

    def tccli(self, acc, *args):
        env = dict(os.environ, TENCENTCLOUD_SECRET_ID=acc["SecretId"], TENCENTCLOUD_SECRET_KEY=acc["SecretKey"],
                   HOME=self.work)
        return subprocess.run([TCCLI] + list(args) + ["--region", "ap-guangzhou", "--endpoint", "http://" + self.ikon.addr],
                              capture_output=True, text=True, env=env, timeout=60)

    def test_tccli(self):
        gina = self.ikon.account("gina")
        img = self.custom(gina, "gina-1")
        p = self.tccli(gina, "cvm", "DescribeImages", "--Filters", '[{"Name":"image-type","Values":["PRIVATE_IMAGE"]}]',
                       "--Limit", "10")
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        out = json.loads(p.stdout)
        self.assertEqual(out["TotalCount"], 1)
        self.assertEqual(out["ImageSet"][0]["ImageId"], img)
        self.assertTrue(out["RequestId"])
        p = self.tccli(gina, "cvm", "ModifyImageAttribute", "--ImageId", img, "--ImageName", "gina-renamed")
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        p = self.tccli(gina, "cvm", "DescribeImages", "--ImageIds", '["%s"]' % img)
        self.assertEqual(json.loads(p.stdout)["ImageSet"][0]["ImageName"], "gina-renamed")
        p = self.tccli(gina, "cvm", "DescribeRegions")
        self.assertEqual(json.loads(p.stdout)["TotalCount"], 6)
        # Errors: tccli prints the SDK exception and exits 255.
        p = self.tccli(gina, "cvm", "DeleteImages", "--ImageIds", '["img-zzzzzzzz"]')
        self.assertEqual(p.returncode, 255)
        self.assertIn("InvalidImageId.NotFound", p.stdout + p.stderr)
        p = self.tccli(gina, "cvm", "DescribeImages", "--ImageIds", '["bogus"]')
        self.assertEqual(p.returncode, 255)
        self.assertIn("InvalidImageId.Malformed", p.stdout + p.stderr)

    def test_metrics(self):
        client(self.ikon, self.alice).DescribeRegions(models.DescribeRegionsRequest())
        with urllib.request.urlopen("http://%s/metrics" % self.ikon.addr, timeout=10) as r:
            text = r.read().decode()
        self.assertRegex(text, r'ikon_api_requests_total\{dialect="tencent",action="DescribeRegions",code="Success"\} [1-9]')
        self.assertIn("ikon_api_request_duration_seconds_bucket", text)
        self.assertIn("ikon_store_bytes", text)
        self.assertIn("ikon_store_dedup_ratio", text)


if __name__ == "__main__":
    unittest.main()

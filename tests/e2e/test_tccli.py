"""tccli (unmodified) against a real `ikon serve`: every image action, with credentials from
the environment and `--endpoint http://127.0.0.1:PORT` (tccli has no protocol option, so the
scheme goes into the endpoint, and the SDK under it then sends and signs the literal
`Host: http://127.0.0.1:PORT`). Success: exit 0 and the inner `Response` as JSON (every field
the SDK model declares, absent ones as null). Errors: exit 255 and
`[TencentCloudSDKException] code:<Code> message:… requestId:…`."""

import json
import re
import secrets
import shutil
import tempfile
import unittest

import harness as h

QUOTA = 2
S = None
WORK = None
DISK = None
PUBLIC = None


def setUpModule():
    global S, WORK, DISK, PUBLIC
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-tccli-")
    DISK = h.make_disk(WORK)
    S = h.Server("[limits]\ncustom_images_per_region = %d\n" % QUOTA, "tccli")
    PUBLIC = S.publish(DISK, name="Ubuntu tccli-public", os_name="Ubuntu Server 22.04 LTS 64bit",
                       platform="Ubuntu")["ImageId"]


def tearDownModule():
    try:
        if S:
            S.stop()
            assert S.proc.poll() is not None
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


class Tccli(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def run_ok(self, acc, action, *args, region="ap-guangzhou"):
        p = h.tccli(S, acc, "cvm", action, *args, region=region, home=WORK)
        self.assertEqual(p.returncode, 0, "tccli cvm %s %s failed:\n%s%s" % (action, args, p.stdout, p.stderr))
        out = json.loads(p.stdout)
        # tccli prints model.to_json_string(): exactly the declared fields plus RequestId.
        declared = set(h.model_fields(action + "Response"))
        self.assertEqual(set(out), declared | {"RequestId"}, "tccli output fields")
        self.assertRegex(out["RequestId"], r"^[0-9a-f-]{36}$")
        return out

    def run_err(self, acc, action, *args, region="ap-guangzhou"):
        p = h.tccli(S, acc, "cvm", action, *args, region=region, home=WORK)
        self.assertEqual(p.returncode, 255, "tccli cvm %s %s should fail with 255:\n%s%s"
                         % (action, args, p.stdout, p.stderr))
        m = re.search(r"\[TencentCloudSDKException\] code:(\S+) message:(.*) requestId:([0-9a-f-]{36})",
                      p.stdout + p.stderr)
        self.assertIsNotNone(m, p.stdout + p.stderr)
        return m.group(1)

    def custom(self, acc, name=None, region="ap-guangzhou"):
        return S.publish(DISK, region=region, name=name or "t-%s" % secrets.token_hex(4), account=acc,
                         os_name="CentOS 7.9 64bit", platform="CentOS")["ImageId"]

    def test_regions_and_zones(self):
        a = S.account("t-regions")
        out = self.run_ok(a, "DescribeRegions")
        self.assertEqual(out["TotalCount"], 6)
        self.assertEqual(sorted(r["Region"] for r in out["RegionSet"]), sorted(h.REGIONS))
        for region, zones in h.REGIONS.items():
            out = self.run_ok(a, "DescribeZones", region=region)
            self.assertEqual(sorted(z["Zone"] for z in out["ZoneSet"]), sorted(zones))
            self.assertEqual(out["TotalCount"], len(zones))

    def test_describe_images(self):
        a = S.account("t-describe")
        mine = self.custom(a, "tccli-mine")
        out = self.run_ok(a, "DescribeImages", "--Filters", '[{"Name":"image-type","Values":["PRIVATE_IMAGE"]}]',
                          "--Limit", "10")
        self.assertEqual(out["TotalCount"], 1)
        img = out["ImageSet"][0]
        self.assertEqual((img["ImageId"], img["ImageName"], img["ImageType"], img["ImageCreator"]),
                         (mine, "tccli-mine", "PRIVATE_IMAGE", a["AccountId"]))
        self.assertEqual(set(img), set(h.model_fields("Image")))
        out = self.run_ok(a, "DescribeImages", "--ImageIds", json.dumps([PUBLIC, mine]))
        self.assertEqual(sorted(i["ImageId"] for i in out["ImageSet"]), sorted([PUBLIC, mine]))
        # Unfolded arguments (tccli's own flattening).
        out = self.run_ok(a, "DescribeImages", "--cli-unfold-argument", "--Filters.0.Name", "image-id",
                          "--Filters.0.Values", PUBLIC, mine)
        self.assertEqual(out["TotalCount"], 2)
        out = self.run_ok(a, "DescribeImages", "--Offset", "1", "--Limit", "1")
        self.assertEqual(len(out["ImageSet"]), 1)
        self.assertEqual(out["TotalCount"], 2)
        out = self.run_ok(a, "DescribeImages", "--Filters", '[{"Name":"image-name","Values":["tccli-mi"]}]')
        self.assertEqual([i["ImageId"] for i in out["ImageSet"]], [mine])
        out = self.run_ok(a, "DescribeImages", "--ImageIds", '["img-zzzzzzzz"]')
        self.assertEqual((out["TotalCount"], out["ImageSet"]), (0, []))
        # Public image from another region; custom image only in its own.
        out = self.run_ok(a, "DescribeImages", "--ImageIds", json.dumps([PUBLIC, mine]), region="ap-hongkong")
        self.assertEqual([i["ImageId"] for i in out["ImageSet"]], [PUBLIC])

    def test_modify_share_delete(self):
        a, b = S.account("t-owner"), S.account("t-recipient")
        img = self.custom(a)
        self.run_ok(a, "ModifyImageAttribute", "--ImageId", img, "--ImageName", "tccli-renamed",
                    "--ImageDescription", "via tccli")
        out = self.run_ok(a, "DescribeImages", "--ImageIds", json.dumps([img]))
        self.assertEqual((out["ImageSet"][0]["ImageName"], out["ImageSet"][0]["ImageDescription"]),
                         ("tccli-renamed", "via tccli"))
        self.run_ok(a, "ModifyImageSharePermission", "--ImageId", img, "--AccountIds",
                    json.dumps([b["AccountId"]]), "--Permission", "SHARE")
        out = self.run_ok(a, "DescribeImageSharePermission", "--ImageId", img)
        self.assertEqual([p["AccountId"] for p in out["SharePermissionSet"]], [b["AccountId"]])
        out = self.run_ok(b, "DescribeImages", "--Filters", '[{"Name":"image-type","Values":["SHARED_IMAGE"]}]')
        self.assertEqual([(i["ImageId"], i["ImageType"]) for i in out["ImageSet"]], [(img, "SHARED_IMAGE")])
        out = self.run_ok(b, "DescribeImages", "--ImageIds", json.dumps([img]), region="ap-shanghai")
        self.assertEqual(out["TotalCount"], 0)
        self.assertEqual(self.run_err(b, "ModifyImageAttribute", "--ImageId", img, "--ImageName", "hijack"),
                         "UnsupportedOperation.SharedImageModifyUnsupported")
        self.assertEqual(self.run_err(a, "DeleteImages", "--ImageIds", json.dumps([img])), "InvalidImageId.InShared")
        self.assertEqual(self.run_err(a, "ModifyImageSharePermission", "--ImageId", img, "--AccountIds",
                                      json.dumps([b["AccountId"]]), "--Permission", "SHARE", region="ap-beijing"),
                         "InvalidImageId.NotFound")
        self.run_ok(a, "ModifyImageSharePermission", "--ImageId", img, "--AccountIds",
                    json.dumps([b["AccountId"]]), "--Permission", "CANCEL")
        self.assertEqual(self.run_ok(a, "DescribeImageSharePermission", "--ImageId", img)["SharePermissionSet"], [])
        # Dry run (tccli bools: True/true) leaves it; the real deletion removes it.
        self.run_ok(a, "DeleteImages", "--ImageIds", json.dumps([img]), "--DryRun", "True")
        self.assertEqual(self.run_ok(a, "DescribeImages", "--ImageIds", json.dumps([img]))["TotalCount"], 1)
        self.run_ok(a, "DeleteImages", "--ImageIds", json.dumps([img]), "--DryRun", "false")
        self.assertEqual(self.run_ok(a, "DescribeImages", "--ImageIds", json.dumps([img]))["TotalCount"], 0)

    def test_quota_os_family(self):
        a = S.account("t-quota")
        self.assertEqual(self.run_ok(a, "DescribeImageQuota")["ImageNumQuota"], QUOTA)
        out = self.run_ok(a, "DescribeImportImageOs")
        self.assertIn("Ubuntu", out["ImportImageOsListSupported"]["Linux"])
        self.assertTrue(out["ImportImageOsVersionSet"])
        img = self.custom(a)
        fam = "tfam%s" % secrets.token_hex(3)
        self.run_ok(a, "ModifyImageAttribute", "--ImageId", img, "--ImageFamily", fam)
        out = self.run_ok(a, "DescribeImageFromFamily", "--ImageFamily", fam)
        self.assertEqual(out["Image"]["ImageId"], img)
        self.assertIsNone(self.run_ok(a, "DescribeImageFromFamily", "--ImageFamily", "none-such")["Image"])
        self.custom(a)
        p = S.publish(DISK, account=a, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ImageQuotaLimitExceeded", p.stderr)

    def test_errors(self):
        a, other = S.account("t-err"), S.account("t-err-other")
        theirs = self.custom(other)
        self.assertEqual(self.run_err(dict(a, SecretKey="w" * len(a["SecretKey"])), "DescribeRegions"),
                         "AuthFailure.SignatureFailure")
        self.assertEqual(self.run_err({"SecretId": "AKID" + "Q" * 32, "SecretKey": "s" * 32}, "DescribeRegions"),
                         "AuthFailure.SecretIdNotFound")
        self.assertEqual(self.run_err(a, "DescribeImages", "--ImageIds", '["bogus"]'), "InvalidImageId.Malformed")
        self.assertEqual(self.run_err(a, "DeleteImages", "--ImageIds", '["img-zzzzzzzz"]'), "InvalidImageId.NotFound")
        self.assertEqual(self.run_err(a, "DescribeImages", "--ImageIds", json.dumps([PUBLIC]), "--Filters",
                                      '[{"Name":"image-type","Values":["PUBLIC_IMAGE"]}]'),
                         "InvalidParameter.InvalidParameterCoexistImageIdsFilters")
        self.assertEqual(self.run_err(a, "DescribeImages", "--Filters", '[{"Name":"colour","Values":["blue"]}]'),
                         "InvalidFilter")
        self.assertEqual(self.run_err(a, "DescribeImages", "--Limit", "1000"), "InvalidParameterValue.LimitExceeded")
        # Another account's private image: not found, never forbidden.
        out = self.run_ok(a, "DescribeImages", "--ImageIds", json.dumps([theirs]))
        self.assertEqual(out["TotalCount"], 0)
        for action, args in (("ModifyImageAttribute", ["--ImageId", theirs, "--ImageName", "x"]),
                             ("DeleteImages", ["--ImageIds", json.dumps([theirs])]),
                             ("DescribeImageSharePermission", ["--ImageId", theirs]),
                             ("ModifyImageSharePermission", ["--ImageId", theirs, "--AccountIds",
                                                             json.dumps([a["AccountId"]]), "--Permission", "SHARE"])):
            with self.subTest(action=action):
                self.assertEqual(self.run_err(a, action, *args), "InvalidImageId.NotFound")


if __name__ == "__main__":
    unittest.main()

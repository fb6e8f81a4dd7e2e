"""Tencent Cloud's own Python SDK (CvmClient, unmodified) against a real `ikon serve`: every
image action, its error paths, and the response shapes the SDK models declare. Each test
runs twice: POST (the SDK default) and GET (`HttpProfile(reqMethod="GET")`, which flattens
parameters into `Filters.0.Values.0=…`)."""

import os
import re
import secrets
import shutil
import tempfile
import time
import unittest

import harness as h
from harness import req, sdk_error

QUOTA = 3
CONFIG = """[limits]
custom_images_per_region = %d
share_accounts_max = 50
daily_operations = 5
daily_limited_actions = ["CreateImage", "ImportImage", "SyncImages", "ExportImages"]
""" % QUOTA
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|\+00:00)$"

S = None       # the server (quota 3)
WORK = None    # temp dir with the disk image
DISK = None
PUBLIC = None  # a public (platform) image
PAGE = None    # prefix of 25 public images for pagination


def setUpModule():
    global S, WORK, DISK, PUBLIC, PAGE
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-sdk-")
    DISK = h.make_disk(WORK)
    S = h.Server(CONFIG, "sdk")
    PUBLIC = S.publish(DISK, name="CentOS 7.9 e2e-public", os_name="CentOS 7.9 64bit", platform="CentOS")["ImageId"]
    PAGE = "pg%s" % secrets.token_hex(3)
    S.publish(DISK, name=PAGE, count=25, os_name="Ubuntu Server 22.04 LTS 64bit", platform="Ubuntu")


def tearDownModule():
    try:
        if S:
            S.stop()
            assert S.proc.poll() is not None, "ikon serve is still running"
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


class Base(h.ServerTestCase):
    METHOD = None

    @property
    def servers(self):
        return [S] if S else []

    def c(self, acc, region="ap-guangzhou", **kw):
        return h.sdk(S, acc, region, self.METHOD, **kw)

    def raw(self, acc, action, params=None, region="ap-guangzhou"):
        """Same call through the SDK's generic client: the raw JSON, for schema checks."""
        return h.common(S, acc, region, self.METHOD).call_json(action, params or {})

    def custom(self, acc, name=None, region="ap-guangzhou"):
        return S.publish(DISK, region=region, name=name or "c-%s" % secrets.token_hex(4), account=acc,
                         os_name="Debian 12 64bit", platform="Debian")["ImageId"]

    def ids(self, resp):
        return [i.ImageId for i in resp.ImageSet]

    def describe(self, c, **kw):
        r = c.DescribeImages(req("DescribeImages", **kw))
        self.assertIsInstance(r.TotalCount, int)
        self.assertTrue(r.RequestId)
        return r

    def share(self, c, image, accounts, permission="SHARE"):
        return c.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=image,
                                                AccountIds=list(accounts), Permission=permission))


class Regions(Base):
    def test_describe_regions(self):
        a = S.account("reg")
        r = self.c(a).DescribeRegions(req("DescribeRegions"))
        self.assertEqual(r.TotalCount, len(h.REGIONS))
        self.assertEqual(sorted(x.Region for x in r.RegionSet), sorted(h.REGIONS))
        for x in r.RegionSet:
            self.assertEqual(x.RegionState, "AVAILABLE")
            self.assertTrue(x.RegionName)
        raw = h.response_of(self, self.raw(a, "DescribeRegions"), "DescribeRegions")
        self.assertEqual(set(raw), {"TotalCount", "RegionSet", "RequestId"})
        for x in raw["RegionSet"]:
            h.check_model(self, x, "RegionInfo")
            self.assertEqual(set(x), {"Region", "RegionName", "RegionState"})

    def test_describe_zones_per_region(self):
        a = S.account("zones")
        for region, zones in h.REGIONS.items():
            with self.subTest(region=region):
                r = self.c(a, region).DescribeZones(req("DescribeZones"))
                self.assertEqual(sorted(z.Zone for z in r.ZoneSet), sorted(zones))
                self.assertEqual(r.TotalCount, len(zones))
                for z in r.ZoneSet:
                    self.assertRegex(z.ZoneId, r"^\d+$")
                    self.assertIn(z.ZoneState, ("AVAILABLE", "UNAVAILABLE"))
                    self.assertTrue(z.ZoneName)
                raw = h.response_of(self, self.raw(a, "DescribeZones", region=region), "DescribeZones")
                for z in raw["ZoneSet"]:
                    h.check_model(self, z, "ZoneInfo")
                    self.assertTrue({"Zone", "ZoneName", "ZoneId", "ZoneState"} <= set(z))


class DescribeImages(Base):
    def test_image_fields_match_sdk_model(self):
        a = S.account("fields")
        mine = self.custom(a, "fields-custom")
        raw = h.response_of(self, self.raw(a, "DescribeImages", {"ImageIds": [PUBLIC, mine]}), "DescribeImages")
        self.assertEqual(raw["TotalCount"], 2)
        self.assertIsInstance(raw["TotalCount"], int)
        by_id = {i["ImageId"]: i for i in raw["ImageSet"]}
        self.assertEqual(set(by_id), {PUBLIC, mine})
        core = {"ImageId", "OsName", "ImageType", "CreatedTime", "ImageName", "ImageDescription", "ImageSize",
                "Architecture", "ImageState", "Platform", "ImageCreator", "ImageSource", "IsSupportCloudinit",
                "SnapshotSet", "Tags", "LicenseType"}
        for img in raw["ImageSet"]:
            h.check_model(self, img, "Image", "ImageSet[%s]" % img["ImageId"])
            self.assertTrue(core <= set(img), "missing Image fields: %s" % (core - set(img)))
            self.assertRegex(img["CreatedTime"], ISO)
            self.assertEqual(img["ImageState"], "NORMAL")
            self.assertIn(img["Architecture"], ("x86_64", "arm", "i386"))
            self.assertGreaterEqual(img["ImageSize"], 1)
            self.assertIn(img["LicenseType"], ("TencentCloud", "BYOL"))
            self.assertTrue(any(s["DiskUsage"] == "SYSTEM_DISK" for s in img["SnapshotSet"]))
        pub, cus = by_id[PUBLIC], by_id[mine]
        self.assertEqual((pub["ImageType"], pub["ImageSource"]), ("PUBLIC_IMAGE", "OFFICIAL"))
        self.assertEqual((pub["OsName"], pub["Platform"], pub["ImageName"]),
                         ("CentOS 7.9 64bit", "CentOS", "CentOS 7.9 e2e-public"))
        self.assertEqual(cus["ImageType"], "PRIVATE_IMAGE")
        self.assertEqual(cus["ImageCreator"], a["AccountId"])
        self.assertEqual((cus["OsName"], cus["Platform"], cus["ImageName"]),
                         ("Debian 12 64bit", "Debian", "fields-custom"))
        # The typed client sees the same values.
        r = self.describe(self.c(a), ImageIds=[mine])
        self.assertEqual(r.ImageSet[0].ImageName, "fields-custom")
        self.assertEqual(r.ImageSet[0].SnapshotSet[0].DiskUsage, "SYSTEM_DISK")

    def test_public_images_visible_in_every_region(self):
        a = S.account("pubvis")
        for region in h.REGIONS:
            with self.subTest(region=region):
                r = self.describe(self.c(a, region), ImageIds=[PUBLIC])
                self.assertEqual((r.TotalCount, self.ids(r)), (1, [PUBLIC]))
                self.assertEqual(r.ImageSet[0].ImageType, "PUBLIC_IMAGE")

    def test_custom_images_only_in_their_region(self):
        a = S.account("regional")
        gz, bj = self.custom(a), self.custom(a, region="ap-beijing")
        c_gz, c_bj = self.c(a), self.c(a, "ap-beijing")
        self.assertEqual(self.ids(self.describe(c_gz, Filters=[("image-type", ["PRIVATE_IMAGE"])])), [gz])
        self.assertEqual(self.ids(self.describe(c_bj, Filters=[("image-type", ["PRIVATE_IMAGE"])])), [bj])
        self.assertEqual(self.describe(c_bj, ImageIds=[gz]).TotalCount, 0)
        self.assertEqual(self.describe(c_gz, ImageIds=[bj]).TotalCount, 0)
        # Other regions' images are not found by the other actions either.
        e = sdk_error(lambda: c_bj.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=gz, ImageName="x")))
        self.assertEqual(e.code, "InvalidImageId.NotFound")

    def test_unknown_and_malformed_ids(self):
        a = S.account("ids")
        c = self.c(a)
        r = self.describe(c, ImageIds=["img-zzzzzzzz"])
        self.assertEqual((r.TotalCount, r.ImageSet), (0, []))
        for bad in ("bogus", "img-ABCDEFGH", "img-abc!defg", "ins-12345678"):
            with self.subTest(id=bad):
                self.assertEqual(sdk_error(lambda: self.describe(c, ImageIds=[bad])).code, "InvalidImageId.Malformed")
                self.assertEqual(sdk_error(lambda: c.ModifyImageAttribute(
                    req("ModifyImageAttribute", ImageId=bad, ImageName="x"))).code, "InvalidImageId.Malformed")
                self.assertEqual(sdk_error(lambda: c.DeleteImages(req("DeleteImages", ImageIds=[bad]))).code,
                                 "InvalidImageId.Malformed")
        self.assertEqual(sdk_error(lambda: c.DescribeImageSharePermission(
            req("DescribeImageSharePermission", ImageId="bogus"))).code, "InvalidImageId.Malformed")
        self.assertEqual(sdk_error(lambda: self.share(c, "bogus", [a["AccountId"]])).code, "InvalidImageId.Malformed")

    def test_parameter_errors(self):
        a = S.account("params")
        c = self.c(a)
        e = sdk_error(lambda: self.describe(c, ImageIds=[PUBLIC], Filters=[("image-type", ["PUBLIC_IMAGE"])]))
        self.assertEqual(e.code, "InvalidParameter.InvalidParameterCoexistImageIdsFilters")
        self.assertEqual(sdk_error(lambda: self.describe(c, Filters=[("no-such-filter", ["x"])])).code, "InvalidFilter")
        self.assertEqual(sdk_error(lambda: self.describe(c, Limit=101)).code, "InvalidParameterValue.LimitExceeded")
        self.assertTrue(sdk_error(lambda: self.describe(c, Filters=[("image-type", ["NO_SUCH_TYPE"])]))
                        .code.startswith("InvalidParameterValue"))
        # Required parameters.
        for action in ("ModifyImageAttribute", "DescribeImageSharePermission", "DeleteImages"):
            with self.subTest(action=action):
                self.assertEqual(sdk_error(lambda: getattr(c, action)(req(action))).code, "MissingParameter")
        e = sdk_error(lambda: c.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=PUBLIC)))
        self.assertEqual(e.code, "MissingParameter")
        mine = self.custom(a)
        e = sdk_error(lambda: self.share(c, mine, [a["AccountId"] + "0"], permission="BORROW"))
        self.assertTrue(e.code.startswith("InvalidParameterValue"), e.code)

    def test_pagination(self):
        a = S.account("pages")
        c = self.c(a)
        flt = [("image-name", [PAGE])]
        seen = []
        for offset in (0, 10, 20):
            r = self.describe(c, Filters=flt, Offset=offset, Limit=10)
            self.assertEqual(r.TotalCount, 25)
            self.assertEqual(len(r.ImageSet), 10 if offset < 20 else 5)
            seen += self.ids(r)
        self.assertEqual(len(set(seen)), 25, "pages overlap or repeat")
        names = sorted(i.ImageName for i in self.describe(c, Filters=flt, Limit=100).ImageSet)
        self.assertEqual(names, ["%s-%05d" % (PAGE, i) for i in range(1, 26)])
        r = self.describe(c, Filters=flt)  # default Limit 20
        self.assertEqual((r.TotalCount, len(r.ImageSet)), (25, 20))
        r = self.describe(c, Filters=flt, Offset=25, Limit=10)
        self.assertEqual((r.TotalCount, r.ImageSet), (25, []))
        r = self.describe(c, Filters=flt, Offset=3, Limit=1)
        self.assertEqual((r.TotalCount, len(r.ImageSet)), (25, 1))
        self.assertEqual(self.ids(r), seen[3:4], "a page must be a window of the same ordering")
        # Unfiltered listing: TotalCount counts everything visible, the page holds Limit.
        r = self.describe(c, Limit=5)
        self.assertGreaterEqual(r.TotalCount, 26)
        self.assertEqual(len(r.ImageSet), 5)

    def test_filters(self):
        a = S.account("filters")
        b = S.account("filters-b")
        c = self.c(a)
        mine = self.custom(a, "filt-mine-%s" % secrets.token_hex(2))
        theirs = self.custom(b, "filt-theirs-%s" % secrets.token_hex(2))
        self.share(self.c(b), theirs, [a["AccountId"]])
        self.assertEqual(self.ids(self.describe(c, Filters=[("image-id", [mine])])), [mine])
        self.assertEqual(sorted(self.ids(self.describe(c, Filters=[("image-id", [mine, PUBLIC, "img-zzzzzzzz"])]))),
                         sorted([mine, PUBLIC]))
        self.assertEqual(self.ids(self.describe(c, Filters=[("image-type", ["PRIVATE_IMAGE"])], Limit=100)), [mine])
        self.assertEqual(self.ids(self.describe(c, Filters=[("image-type", ["SHARED_IMAGE"])], Limit=100)), [theirs])
        pub = self.describe(c, Filters=[("image-type", ["PUBLIC_IMAGE"])], Limit=100)
        self.assertEqual(pub.TotalCount, 26)
        self.assertTrue(all(i.ImageType == "PUBLIC_IMAGE" for i in pub.ImageSet))
        both = self.describe(c, Filters=[("image-type", ["PRIVATE_IMAGE", "SHARED_IMAGE"])], Limit=100)
        self.assertEqual(sorted(self.ids(both)), sorted([mine, theirs]))
        # image-name is a fuzzy (substring) match; platform too.
        self.assertEqual(self.ids(self.describe(c, Filters=[("image-name", ["filt-mine"])])), [mine])
        r = self.describe(c, Filters=[("platform", ["CentOS"])], Limit=100)
        self.assertEqual(self.ids(r), [PUBLIC])
        r = self.describe(c, Filters=[("platform", ["Debian"])], Limit=100)
        self.assertEqual(sorted(self.ids(r)), sorted([mine, theirs]))
        # Filters are ANDed.
        r = self.describe(c, Filters=[("platform", ["Debian"]), ("image-type", ["SHARED_IMAGE"])])
        self.assertEqual(self.ids(r), [theirs])
        r = self.describe(c, Filters=[("image-name", [PAGE]), ("image-type", ["PRIVATE_IMAGE"])])
        self.assertEqual((r.TotalCount, r.ImageSet), (0, []))
        # Tag filters are accepted; nothing here is tagged.
        for f in (("tag-key", ["env"]), ("tag-value", ["prod"]), ("tag:env", ["prod"])):
            with self.subTest(filter=f[0]):
                r = self.describe(c, Filters=[f])
                self.assertEqual((r.TotalCount, r.ImageSet), (0, []))


class Visibility(Base):
    def test_another_accounts_private_image_is_invisible(self):
        owner, other = S.account("owner"), S.account("other")
        img = self.custom(owner)
        c = self.c(other)
        self.assertEqual(self.describe(c, ImageIds=[img]).TotalCount, 0)
        self.assertNotIn(img, self.ids(self.describe(c, Limit=100)))
        self.assertNotIn(img, self.ids(self.describe(c, Filters=[("image-id", [img])])))
        calls = {
            "ModifyImageAttribute": lambda: c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img,
                                                                       ImageName="stolen")),
            "DeleteImages": lambda: c.DeleteImages(req("DeleteImages", ImageIds=[img])),
            "DeleteImages(DryRun)": lambda: c.DeleteImages(req("DeleteImages", ImageIds=[img], DryRun=True)),
            "ModifyImageSharePermission": lambda: self.share(c, img, [other["AccountId"]]),
            "DescribeImageSharePermission": lambda: c.DescribeImageSharePermission(
                req("DescribeImageSharePermission", ImageId=img)),
        }
        for name, call in calls.items():
            with self.subTest(action=name):
                self.assertEqual(sdk_error(call).code, "InvalidImageId.NotFound")
        # Untouched.
        r = self.describe(self.c(owner), ImageIds=[img])
        self.assertEqual(r.TotalCount, 1)
        self.assertNotEqual(r.ImageSet[0].ImageName, "stolen")

    def test_accounts_cannot_change_public_images(self):
        a = S.account("pubchange")
        c = self.c(a)
        for call in (lambda: c.DeleteImages(req("DeleteImages", ImageIds=[PUBLIC])),
                     lambda: c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=PUBLIC, ImageName="mine")),
                     lambda: self.share(c, PUBLIC, [a["AccountId"]])):
            e = sdk_error(call)
            self.assertNotIn(e.code, ("InternalError", "FailedOperation"), e)
        self.assertEqual(self.describe(c, ImageIds=[PUBLIC]).ImageSet[0].ImageName, "CentOS 7.9 e2e-public")


class Modify(Base):
    def test_modify_image_attribute(self):
        a = S.account("modify")
        c = self.c(a)
        img = self.custom(a)
        r = c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img, ImageName="renamed-%s" % img,
                                       ImageDescription="described by e2e"))
        self.assertTrue(r.RequestId)
        i = self.describe(c, ImageIds=[img]).ImageSet[0]
        self.assertEqual((i.ImageName, i.ImageDescription), ("renamed-%s" % img, "described by e2e"))
        raw = h.response_of(self, self.raw(a, "ModifyImageAttribute", {"ImageId": img, "ImageDescription": "d2"}),
                            "ModifyImageAttribute")
        self.assertEqual(set(raw), {"RequestId"})
        self.assertEqual(self.describe(c, ImageIds=[img]).ImageSet[0].ImageName, "renamed-%s" % img)
        e = sdk_error(lambda: c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img, ImageName="x" * 61)))
        self.assertTrue(e.code.startswith("InvalidParameter"), e.code)

    def test_image_family(self):
        a = S.account("family")
        c = self.c(a)
        fam = "fam%s" % secrets.token_hex(3)
        img = self.custom(a)
        c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img, ImageFamily=fam))
        self.assertEqual(self.describe(c, ImageIds=[img]).ImageSet[0].ImageFamily, fam)
        r = c.DescribeImageFromFamily(req("DescribeImageFromFamily", ImageFamily=fam))
        self.assertEqual(r.Image.ImageId, img)
        raw = h.response_of(self, self.raw(a, "DescribeImageFromFamily", {"ImageFamily": fam}),
                            "DescribeImageFromFamily")
        h.check_model(self, raw["Image"], "Image")
        r = c.DescribeImageFromFamily(req("DescribeImageFromFamily", ImageFamily="no-such-family"))
        self.assertIsNone(r.Image)
        # Another account does not see this family's private image.
        r = self.c(S.account("family-other")).DescribeImageFromFamily(
            req("DescribeImageFromFamily", ImageFamily=fam))
        self.assertIsNone(r.Image)


class Quota(Base):
    def test_quota_and_import_os(self):
        a = S.account("quota")
        c = self.c(a)
        r = c.DescribeImageQuota(req("DescribeImageQuota"))
        self.assertEqual(r.ImageNumQuota, QUOTA)
        raw = h.response_of(self, self.raw(a, "DescribeImageQuota"), "DescribeImageQuota")
        self.assertIsInstance(raw["ImageNumQuota"], int)
        ids = [self.custom(a) for _ in range(QUOTA)]
        p = S.publish(DISK, name="one-too-many", account=a, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("ImageQuotaLimitExceeded", p.stderr)
        # The quota is per region: Beijing still has room.
        self.custom(a, region="ap-beijing")
        # Deleting one frees a unit.
        c.DeleteImages(req("DeleteImages", ImageIds=[ids[0]]))
        self.custom(a)
        self.assertEqual(self.describe(c, Filters=[("image-type", ["PRIVATE_IMAGE"])]).TotalCount, QUOTA)

    def test_describe_import_image_os(self):
        a = S.account("importos")
        r = self.c(a).DescribeImportImageOs(req("DescribeImportImageOs"))
        self.assertIn("CentOS", r.ImportImageOsListSupported.Linux)
        self.assertTrue(r.ImportImageOsListSupported.Windows)
        self.assertTrue(r.ImportImageOsVersionSet)
        raw = h.response_of(self, self.raw(a, "DescribeImportImageOs"), "DescribeImportImageOs")
        h.check_model(self, raw["ImportImageOsListSupported"], "ImageOsList")
        for v in raw["ImportImageOsVersionSet"]:
            h.check_model(self, v, "OsVersion")
            self.assertTrue(v["OsVersions"])
        linux = set(raw["ImportImageOsListSupported"]["Linux"])
        self.assertTrue({"CentOS", "Ubuntu", "Debian"} <= linux, linux)


class Sharing(Base):
    def test_share_lifecycle(self):
        owner, bob = S.account("sharer"), S.account("recipient")
        img = self.custom(owner, "shared-%s" % secrets.token_hex(3))
        o, b = self.c(owner), self.c(bob)
        r = self.share(o, img, [bob["AccountId"]])
        self.assertTrue(r.RequestId)
        raw = h.response_of(self, self.raw(owner, "DescribeImageSharePermission", {"ImageId": img}),
                            "DescribeImageSharePermission")
        self.assertEqual([p["AccountId"] for p in raw["SharePermissionSet"]], [bob["AccountId"]])
        for p in raw["SharePermissionSet"]:
            h.check_model(self, p, "SharePermission")
            self.assertRegex(p["CreatedTime"], ISO)
        # The recipient sees it as SHARED_IMAGE in the image's region, and nowhere else.
        r = self.describe(b, ImageIds=[img])
        self.assertEqual((r.TotalCount, r.ImageSet[0].ImageType), (1, "SHARED_IMAGE"))
        self.assertEqual(self.ids(self.describe(b, Filters=[("image-type", ["SHARED_IMAGE"])])), [img])
        for region in h.REGIONS:
            if region != "ap-guangzhou":
                with self.subTest(region=region):
                    cr = self.c(bob, region)
                    self.assertEqual(self.describe(cr, ImageIds=[img]).TotalCount, 0)
                    self.assertEqual(self.describe(cr, Filters=[("image-type", ["SHARED_IMAGE"])]).TotalCount, 0)
        # For its owner it is still a PRIVATE_IMAGE.
        self.assertEqual(self.describe(o, ImageIds=[img]).ImageSet[0].ImageType, "PRIVATE_IMAGE")
        # The recipient may not rename or re-describe it, nor re-share or delete it.
        for fields in ({"ImageName": "mine-now"}, {"ImageDescription": "mine"}):
            e = sdk_error(lambda: b.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img, **fields)))
            self.assertEqual(e.code, "UnsupportedOperation.SharedImageModifyUnsupported")
        self.assertNotEqual(self.describe(o, ImageIds=[img]).ImageSet[0].ImageName, "mine-now")
        self.assertIn(sdk_error(lambda: self.share(b, img, [owner["AccountId"]])).code,
                      ("UnauthorizedOperation.ImageNotBelongToAccount", "InvalidImageId.NotFound"))
        self.assertIsNotNone(sdk_error(lambda: b.DeleteImages(req("DeleteImages", ImageIds=[img]))).code)
        self.assertIn(sdk_error(lambda: b.DescribeImageSharePermission(
            req("DescribeImageSharePermission", ImageId=img))).code,
            ("UnauthorizedOperation.ImageNotBelongToAccount", "InvalidImageId.NotFound"))
        # Still shared: the owner cannot delete it (dry run or not).
        for dry in (True, False):
            e = sdk_error(lambda: o.DeleteImages(req("DeleteImages", ImageIds=[img], DryRun=dry)))
            self.assertEqual(e.code, "InvalidImageId.InShared")
        # Cancel: the recipient no longer sees it; then it can be deleted.
        self.share(o, img, [bob["AccountId"]], "CANCEL")
        self.assertEqual(self.describe(b, ImageIds=[img]).TotalCount, 0)
        self.assertEqual(o.DescribeImageSharePermission(
            req("DescribeImageSharePermission", ImageId=img)).SharePermissionSet, [])
        o.DeleteImages(req("DeleteImages", ImageIds=[img]))
        self.assertEqual(self.describe(o, ImageIds=[img]).TotalCount, 0)

    def test_share_from_another_region_is_not_found(self):
        owner, bob = S.account("xregion"), S.account("xregion-b")
        img = self.custom(owner)
        for region in ("ap-beijing", "ap-shanghai", "na-ashburn"):
            with self.subTest(region=region):
                e = sdk_error(lambda: self.share(self.c(owner, region), img, [bob["AccountId"]]))
                self.assertEqual(e.code, "InvalidImageId.NotFound")
        self.assertEqual(self.c(owner).DescribeImageSharePermission(
            req("DescribeImageSharePermission", ImageId=img)).SharePermissionSet, [])
        self.assertEqual(self.describe(self.c(bob), ImageIds=[img]).TotalCount, 0)

    def test_share_limit_is_50_accounts(self):
        owner = S.account("many")
        img = self.custom(owner)
        o = self.c(owner)
        others = [S.account("r%02d" % i)["AccountId"] for i in range(51)]
        self.share(o, img, others[:25])
        self.share(o, img, others[25:50])
        perms = o.DescribeImageSharePermission(req("DescribeImageSharePermission", ImageId=img)).SharePermissionSet
        self.assertEqual(sorted(p.AccountId for p in perms), sorted(others[:50]))
        e = sdk_error(lambda: self.share(o, img, others[50:]))
        self.assertEqual(e.code, "OverQuota")
        perms = o.DescribeImageSharePermission(req("DescribeImageSharePermission", ImageId=img)).SharePermissionSet
        self.assertEqual(len(perms), 50)
        # All-or-nothing: a batch that would cross the limit adds nobody.
        self.share(o, img, others[:3], "CANCEL")
        e = sdk_error(lambda: self.share(o, img, others[:3] + others[50:]))
        self.assertEqual(e.code, "OverQuota")
        perms = o.DescribeImageSharePermission(req("DescribeImageSharePermission", ImageId=img)).SharePermissionSet
        self.assertEqual(len(perms), 47)
        # Sharing again to an account that already has it.
        self.assertEqual(sdk_error(lambda: self.share(o, img, others[3:4])).code,
                         "FailedOperation.AccountAlreadyExists")

    def test_share_errors(self):
        owner = S.account("shareerr")
        img = self.custom(owner)
        o = self.c(owner)
        self.assertIn(sdk_error(lambda: self.share(o, img, [owner["AccountId"]])).code,
                      ("InvalidAccountIs.YourSelf", "FailedOperation.AccountIsYourSelf"))
        self.assertEqual(sdk_error(lambda: self.share(o, img, ["999999999999"])).code, "InvalidAccountId.NotFound")


class Delete(Base):
    def test_dry_run_leaves_the_image(self):
        a = S.account("dryrun")
        c = self.c(a)
        img = self.custom(a)
        raw = h.response_of(self, self.raw(a, "DeleteImages", {"ImageIds": [img], "DryRun": True}), "DeleteImages")
        self.assertEqual(set(raw), {"RequestId"})
        r = c.DeleteImages(req("DeleteImages", ImageIds=[img], DryRun=True))
        self.assertTrue(r.RequestId)
        self.assertEqual(self.describe(c, ImageIds=[img]).ImageSet[0].ImageState, "NORMAL")
        # A dry run reports what a real run would.
        e = sdk_error(lambda: c.DeleteImages(req("DeleteImages", ImageIds=[img, "img-zzzzzzzz"], DryRun=True)))
        self.assertEqual(e.code, "InvalidImageId.NotFound")
        self.assertEqual(self.describe(c, ImageIds=[img]).TotalCount, 1)
        c.DeleteImages(req("DeleteImages", ImageIds=[img]))
        self.assertEqual(self.describe(c, ImageIds=[img]).TotalCount, 0)
        self.assertEqual(sdk_error(lambda: c.DeleteImages(req("DeleteImages", ImageIds=[img]))).code,
                         "InvalidImageId.NotFound")


class Auth(Base):
    def test_wrong_secret_key(self):
        a = S.account("wrongkey")
        c = self.c(a, secret_key="x" * len(a["SecretKey"]))
        for call in (lambda: c.DescribeRegions(req("DescribeRegions")),
                     lambda: self.describe(c, Filters=[("image-type", ["PUBLIC_IMAGE"])], Limit=3)):
            self.assertEqual(sdk_error(call).code, "AuthFailure.SignatureFailure")

    def test_unknown_secret_id(self):
        ghost = {"SecretId": "AKID" + "Z" * 32, "SecretKey": "k" * 32}
        self.assertEqual(sdk_error(lambda: self.c(ghost).DescribeRegions(req("DescribeRegions"))).code,
                         "AuthFailure.SecretIdNotFound")

    def test_unknown_action(self):
        a = S.account("unknownaction")
        e = sdk_error(lambda: h.common(S, a, method=self.METHOD).call_json("DescribeUnicorns", {}))
        self.assertEqual(e.code, "InvalidAction")

    def test_unknown_parameter(self):
        a = S.account("unknownparam")
        e = sdk_error(lambda: h.common(S, a, method=self.METHOD).call_json("DescribeImages", {"Bogus": "1"}))
        self.assertEqual(e.code, "UnknownParameter")

    def test_literal_host_quirk(self):
        """endpoint with a scheme: the SDK sends (and signs) `Host: http://127.0.0.1:PORT`."""
        a = S.account("quirk")
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.cvm.v20170312 import cvm_client
        hp = HttpProfile(endpoint=S.url, reqMethod=self.METHOD)
        c = cvm_client.CvmClient(credential.Credential(a["SecretId"], a["SecretKey"]), "ap-guangzhou",
                                 ClientProfile(httpProfile=hp))
        self.assertEqual(self.describe(c, ImageIds=[PUBLIC]).TotalCount, 1)

    def test_english_and_chinese_messages(self):
        a = S.account("lang")
        for lang in ("en-US", "zh-CN"):
            e = sdk_error(lambda: self.describe(self.c(a, language=lang), ImageIds=["bogus"]))
            self.assertEqual(e.code, "InvalidImageId.Malformed")
            self.assertTrue(e.message)


class Post(object):
    METHOD = "POST"


class Get(object):
    METHOD = "GET"


# Every test class above, once per HTTP method.
for _cls in (Regions, DescribeImages, Visibility, Modify, Quota, Sharing, Delete, Auth):
    for _m in (Post, Get):
        _name = "%s%s" % (_cls.__name__, _m.__name__)
        globals()[_name] = type(_name, (_m, _cls), {"__module__": __name__})
del _cls, _m, _name


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    for name, obj in sorted(globals().items()):
        if isinstance(obj, type) and issubclass(obj, Base) and obj.METHOD:
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


if __name__ == "__main__":
    unittest.main()

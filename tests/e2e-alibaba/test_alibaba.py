"""End-to-end: Alibaba Cloud's own Python SDKs against a real `ikon serve --preset alibaba`.

Every action is driven by both SDKs — the Tea SDK (alibabacloud-ecs20140526, ACS3-HMAC-SHA256
and RPC V1) and the legacy SDK (aliyun-python-sdk-ecs, RPC V1) — including its error paths:
bad signatures, another account's resources, share limits and dry runs. Raw answers (legacy
SDK) are checked against the Tea SDK's response models. Images are published with
`ikon admin image publish`; publishing into an account is that account's ImportImage task.
"""

import json
import re
import shutil
import tempfile
import time

from ali import REGION, ali, code_of, harness, lcall, legacy, legacy_req, m, schema, tea
from aliyunsdkecs.request.v20140526.CancelTaskRequest import CancelTaskRequest
from aliyunsdkecs.request.v20140526.DeleteImageRequest import DeleteImageRequest
from aliyunsdkecs.request.v20140526.DescribeImageFromFamilyRequest import DescribeImageFromFamilyRequest
from aliyunsdkecs.request.v20140526.DescribeImageSharePermissionRequest import DescribeImageSharePermissionRequest
from aliyunsdkecs.request.v20140526.DescribeImageSupportInstanceTypesRequest import \
    DescribeImageSupportInstanceTypesRequest
from aliyunsdkecs.request.v20140526.DescribeImagesRequest import DescribeImagesRequest
from aliyunsdkecs.request.v20140526.DescribeRegionsRequest import DescribeRegionsRequest
from aliyunsdkecs.request.v20140526.DescribeTaskAttributeRequest import DescribeTaskAttributeRequest
from aliyunsdkecs.request.v20140526.DescribeTasksRequest import DescribeTasksRequest
from aliyunsdkecs.request.v20140526.ModifyImageAttributeRequest import ModifyImageAttributeRequest
from aliyunsdkecs.request.v20140526.ModifyImageSharePermissionRequest import ModifyImageSharePermissionRequest

SHARE_MAX = 2
ALIBABA_REGIONS = {"cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen", "cn-hongkong", "ap-southeast-1",
                   "us-west-1", "us-east-1", "eu-central-1"}


class AlibabaSdks(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(config="[limits]\nshare_accounts_max = %d\n" % SHARE_MAX, name="e2e-ali",
                                    preset="alibaba")
        cls.servers = (cls.server,)
        cls.work = tempfile.mkdtemp(prefix="ikon-e2e-ali-img-")
        cls.disk = harness.make_disk(cls.work)
        cls.public = ali(cls.publish("CentOS 7.9 64bit", family="centos-e2e"))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def publish(cls, name, account=None, family=None):
        return cls.server.publish(cls.disk, region=REGION, name=name, account=account, family=family)["ImageId"]

    def account(self, name):
        return self.server.account(name)

    def custom(self, owner, name, family=None):
        return ali(self.publish(name, account=owner, family=family))

    def tea(self, acc, **kw):
        return tea(self.server, acc, **kw)

    def legacy(self, acc, **kw):
        return legacy(self.server, acc, **kw)

    def describe(self, client, **kw):
        return client.describe_images(m.DescribeImagesRequest(region_id=REGION, **kw)).body

    # -- DescribeRegions -------------------------------------------------------------------

    def test_regions_through_every_signature(self):
        acc = self.account("regions")
        for v1 in (False, True):
            r = self.tea(acc, v1=v1).describe_regions(m.DescribeRegionsRequest(accept_language="en-US")).body
            self.assertEqual({x.region_id for x in r.regions.region}, ALIBABA_REGIONS)
            self.assertTrue(all(x.status == "available" for x in r.regions.region))
            self.assertEqual([x.local_name for x in r.regions.region if x.region_id == REGION], ["China (Hangzhou)"])
        raw = lcall(self.legacy(acc), DescribeRegionsRequest())
        self.assertEqual({x["RegionId"] for x in raw["Regions"]["Region"]}, ALIBABA_REGIONS)
        schema(self, raw, "DescribeRegions")
        self.assertEqual(code_of(lambda: self.tea(acc).describe_regions(
            m.DescribeRegionsRequest(accept_language="xx-YY"))), (404, "InvalidAcceptLanguage.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(acc), legacy_req(DescribeRegionsRequest,
                                                                             ResourceType="gpu"))),
                         (404, "InvalidResourceType.NotFound"))

    # -- signatures ------------------------------------------------------------------------

    def test_signature_failures_in_alibabas_words(self):
        acc = self.account("sig")
        for v1 in (False, True):
            bad = self.tea(acc, v1=v1, secret="wrong-secret")
            self.assertEqual(code_of(lambda: bad.describe_regions(m.DescribeRegionsRequest())),
                             (400, "SignatureDoesNotMatch"))
            self.assertEqual(code_of(lambda: self.describe(bad)), (400, "SignatureDoesNotMatch"))
        # The legacy core splits our SignatureDoesNotMatch message at ':' and compares the
        # string to sign with its own: equal strings turn the error into InvalidAccessKeySecret,
        # which proves both the message form and the V1 canonical string match Alibaba's.
        for req in (DescribeRegionsRequest(), legacy_req(DescribeImagesRequest, ImageOwnerAlias="self")):
            self.assertEqual(code_of(lambda: lcall(self.legacy(acc, secret="wrong"), req)),
                             (400, "InvalidAccessKeySecret"))
        ghost = dict(acc, SecretId="LTAIghost")
        self.assertEqual(code_of(lambda: self.tea(ghost).describe_regions(m.DescribeRegionsRequest())),
                         (404, "InvalidAccessKeyId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(ghost), DescribeRegionsRequest())),
                         (404, "InvalidAccessKeyId.NotFound"))

    # -- DescribeImages --------------------------------------------------------------------

    def test_describe_images_aliases_status_filters_paging(self):
        alice, bob = self.account("alice"), self.account("bob")
        c = self.tea(alice)
        mine = [self.custom(alice, "page-%d" % i, family="pages") for i in range(3)]
        r = self.describe(c, image_owner_alias="system")
        img = [i for i in r.images.image if i.image_id == self.public][0]
        self.assertEqual((img.image_owner_alias, img.status, img.progress, img.usable),
                         ("system", "Available", "100%", True))
        self.assertEqual((img.is_self_shared, img.image_family), ("false", "centos-e2e"))
        self.assertRegex(img.creation_time, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(img.disk_device_mappings.disk_device_mapping[0].type, "system")
        self.assertEqual(img.disk_device_mappings.disk_device_mapping[0].device, "/dev/xvda")
        r = self.describe(c, image_owner_alias="self", page_number=2, page_size=2)
        self.assertEqual((r.total_count, r.page_number, r.page_size, len(r.images.image)), (3, 2, 2, 1))
        self.assertIn(r.images.image[0].image_id, mine)
        # No alias: system + self + others; marketplace is empty here.
        r = self.describe(c, page_size=100)
        ids = {i.image_id for i in r.images.image}
        self.assertTrue(set(mine) | {self.public} <= ids)
        self.assertEqual(self.describe(c, image_owner_alias="marketplace").total_count, 0)
        # Unknown ids are simply absent; names and families filter.
        r = self.describe(c, image_id=",".join(mine[:2] + ["m-zzzzzzzz"]))
        self.assertEqual(sorted(i.image_id for i in r.images.image), sorted(mine[:2]))
        self.assertEqual([i.image_id for i in self.describe(c, image_name="page-1").images.image], [mine[1]])
        self.assertEqual(self.describe(c, image_family="pages").total_count, 3)
        self.assertEqual(self.describe(c, status="Creating,CreateFailed", image_owner_alias="self").total_count, 0)
        self.assertEqual(self.describe(c, status="ALL", image_owner_alias="self").total_count, 3)
        # Another account sees none of them, by id or alias.
        self.assertEqual(self.describe(self.tea(bob), image_id=",".join(mine)).total_count, 0)
        self.assertEqual(self.describe(self.tea(bob, v1=True), image_owner_alias="self").total_count, 0)
        # Legacy SDK: raw JSON, checked against the Tea model.
        raw = lcall(self.legacy(alice), legacy_req(DescribeImagesRequest, ImageOwnerAlias="self", PageSize=10))
        self.assertEqual(sorted(i["ImageId"] for i in raw["Images"]["Image"]), sorted(mine))
        schema(self, raw, "DescribeImages")
        raw = lcall(self.legacy(bob), legacy_req(DescribeImagesRequest, ImageId=",".join(mine)))
        self.assertEqual((raw["TotalCount"], raw["Images"]["Image"]), (0, []))
        # Errors and dry runs through both SDKs.
        self.assertEqual(code_of(lambda: self.describe(c, image_owner_alias="nobody")),
                         (400, "InvalidImageOwnerAlias.ValueNotSupported"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(
            DescribeImagesRequest, ImageOwnerAlias="nobody"))), (400, "InvalidImageOwnerAlias.ValueNotSupported"))
        self.assertEqual(code_of(lambda: self.describe(c, status="Sleeping")), (400, "InvalidParamter"))
        self.assertEqual(code_of(lambda: self.describe(c, page_size=101)), (400, "InvalidParamter"))
        self.assertEqual(code_of(lambda: self.describe(c, dry_run=True)), (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(DescribeImagesRequest, DryRun=True))),
                         (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: tea(self.server, alice, region="mars-1").describe_images(
            m.DescribeImagesRequest(region_id="mars-1"))), (404, "InvalidRegionId.NotFound"))

    # -- sharing ---------------------------------------------------------------------------

    def test_sharing_visibility_limits_and_recipients(self):
        alice, bob, carol, dave = (self.account(n) for n in ("alice", "bob", "carol", "dave"))
        owner, recipient = self.tea(alice), self.tea(bob)
        img = self.custom(alice, "shared-one")
        self.assertEqual(self.describe(recipient, image_id=img).total_count, 0)

        def share(c, add=None, remove=None, dry=None, image=img):
            return c.modify_image_share_permission(m.ModifyImageSharePermissionRequest(
                region_id=REGION, image_id=image, add_account=add, remove_account=remove, dry_run=dry))

        def lshare(acc, add=(), remove=(), dry=None, image=img):
            req = legacy_req(ModifyImageSharePermissionRequest, ImageId=image)
            if add:
                req.set_AddAccounts(list(add))
            if remove:
                req.set_RemoveAccounts(list(remove))
            if dry is not None:
                req.set_DryRun(dry)
            return lcall(self.legacy(acc), req)

        # Dry runs change nothing, in both SDKs.
        self.assertEqual(code_of(lambda: share(owner, add=[bob["AccountId"]], dry=True)), (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: lshare(alice, add=[bob["AccountId"]], dry=True)), (400, "DryRunOperation"))
        self.assertEqual(self.describe(recipient, image_id=img).total_count, 0)
        # Refusals: oneself, an unknown account, another account's image.
        self.assertEqual(code_of(lambda: share(owner, add=[alice["AccountId"]])), (404, "InvalidAccount.Forbbiden"))
        self.assertEqual(code_of(lambda: lshare(alice, add=["999999999999"])), (404, "InvalidAccount.NotFound"))
        self.assertEqual(code_of(lambda: share(recipient, add=[carol["AccountId"]])), (404, "InvalidImageId.NotFound"))
        self.assertEqual(code_of(lambda: lshare(bob, add=[carol["AccountId"]])), (404, "InvalidImageId.NotFound"))
        self.assertEqual(code_of(lambda: share(owner)), (400, "MissingParameter"))
        share(owner, add=[bob["AccountId"], carol["AccountId"]])
        r = self.describe(recipient, image_owner_alias="others")
        self.assertEqual([(i.image_id, i.image_owner_alias) for i in r.images.image], [(img, "others")])
        self.assertEqual(self.describe(owner, image_id=img).images.image[0].is_self_shared, "true")
        # The limit (2 here) counts after withdrawals in the same call; both SDKs see the code.
        self.assertEqual(code_of(lambda: share(owner, add=[dave["AccountId"]])), (403, "QuotaExceed.ShareImageUser"))
        self.assertEqual(code_of(lambda: lshare(alice, add=[dave["AccountId"]])), (403, "QuotaExceed.ShareImageUser"))
        lshare(alice, add=[dave["AccountId"]], remove=[carol["AccountId"]])
        r = owner.describe_image_share_permission(
            m.DescribeImageSharePermissionRequest(region_id=REGION, image_id=img)).body
        self.assertEqual((r.total_count, r.image_id), (2, img))
        self.assertEqual(sorted(a.aliyun_id for a in r.accounts.account), sorted([bob["AccountId"], dave["AccountId"]]))
        raw = lcall(self.legacy(alice), legacy_req(DescribeImageSharePermissionRequest, ImageId=img, PageSize=1,
                                                   PageNumber=2))
        self.assertEqual((raw["TotalCount"], len(raw["Accounts"]["Account"])), (2, 1))
        schema(self, raw, "DescribeImageSharePermission")
        self.assertRegex(raw["Accounts"]["Account"][0]["SharedTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # The recipient can neither read the share list, modify, delete nor re-share.
        self.assertEqual(code_of(lambda: recipient.describe_image_share_permission(
            m.DescribeImageSharePermissionRequest(region_id=REGION, image_id=img))), (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(bob), legacy_req(
            DescribeImageSharePermissionRequest, ImageId=img))), (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: recipient.modify_image_attribute(
            m.ModifyImageAttributeRequest(region_id=REGION, image_id=img, image_name="mine"))),
            (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(bob), legacy_req(DeleteImageRequest, ImageId=img))),
                         (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: share(recipient, add=[carol["AccountId"]])), (403, "OperationDenied"))
        # Carol, withdrawn, no longer sees it; a shared image cannot be deleted until unshared.
        self.assertEqual(self.describe(self.tea(carol), image_id=img).total_count, 0)
        self.assertEqual(code_of(lambda: owner.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=img))),
                         (403, "ImageUseShared"))
        lshare(alice, remove=[bob["AccountId"], dave["AccountId"]])
        self.assertEqual(self.describe(recipient, image_id=img).total_count, 0)
        lcall(self.legacy(alice), legacy_req(DeleteImageRequest, ImageId=img))
        self.assertEqual(self.describe(owner, image_id=img).total_count, 0)

    # -- ModifyImageAttribute, DescribeImageFromFamily, DeleteImage ------------------------

    def test_modify_family_delete_through_both_sdks(self):
        alice, bob = self.account("alice"), self.account("bob")
        c = self.tea(alice, v1=True)
        img = self.custom(alice, "renamable")
        c.modify_image_attribute(m.ModifyImageAttributeRequest(
            region_id=REGION, image_id=img, image_name="renamed", description="about it", image_family="web"))
        i = self.describe(c, image_id=img).images.image[0]
        self.assertEqual((i.image_name, i.description, i.image_family), ("renamed", "about it", "web"))
        r = c.describe_image_from_family(m.DescribeImageFromFamilyRequest(region_id=REGION, image_family="web")).body
        self.assertEqual(r.image.image_id, img)
        raw = lcall(self.legacy(alice), legacy_req(DescribeImageFromFamilyRequest, ImageFamily="web"))
        self.assertEqual(raw["Image"]["ImageId"], img)
        # Alibaba's Image model for this action is a subset of DescribeImages' (reference §2.1).
        schema(self, raw, "DescribeImageFromFamily", exact=False)
        # Bob sees no image of Alice's family and cannot change hers.
        raw = lcall(self.legacy(bob), legacy_req(DescribeImageFromFamilyRequest, ImageFamily="web"))
        self.assertEqual(raw["Image"], {})
        self.assertEqual(code_of(lambda: self.tea(bob).modify_image_attribute(m.ModifyImageAttributeRequest(
            region_id=REGION, image_id=img, image_name="mine"))), (404, "InvalidImageId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(bob), legacy_req(
            ModifyImageAttributeRequest, ImageId=img, Description="mine"))), (404, "InvalidImageId.NotFound"))
        # Form errors, platform images, dry runs.
        self.assertEqual(code_of(lambda: c.modify_image_attribute(m.ModifyImageAttributeRequest(
            region_id=REGION, image_id=img, image_name="http://x"))), (400, "InvalidImageName.Malformed"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(
            ModifyImageAttributeRequest, ImageId=self.public, ImageName="mine"))), (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(
            ModifyImageAttributeRequest, ImageId=img, ImageName="dry", DryRun=True))), (400, "DryRunOperation"))
        self.assertEqual(self.describe(c, image_id=img).images.image[0].image_name, "renamed")
        # A duplicate name; deprecation hides it from the default listing and the family.
        self.custom(alice, "taken")
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(
            ModifyImageAttributeRequest, ImageId=img, ImageName="taken"))), (400, "InvalidImageName.Duplicated"))
        lcall(self.legacy(alice), legacy_req(ModifyImageAttributeRequest, ImageId=img, Status="Deprecated"))
        self.assertEqual(self.describe(c, image_id=img).total_count, 0)
        self.assertEqual(self.describe(c, image_id=img, status="Deprecated").images.image[0].status, "Deprecated")
        r = c.describe_image_from_family(m.DescribeImageFromFamilyRequest(region_id=REGION, image_family="web")).body
        self.assertIsNone(r.image.image_id)
        # DeleteImage: dry run keeps it; another account cannot; gone afterwards.
        for fn in (lambda: c.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=img, dry_run=True)),
                   lambda: lcall(self.legacy(alice), legacy_req(DeleteImageRequest, ImageId=img, DryRun=True))):
            self.assertEqual(code_of(fn), (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: self.tea(bob).delete_image(
            m.DeleteImageRequest(region_id=REGION, image_id=img))), (404, "InvalidImageId.NotFound"))
        c.delete_image(m.DeleteImageRequest(region_id=REGION, image_id=img, force=True))
        self.assertEqual(self.describe(c, image_id=img, status="ALL").total_count, 0)
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(DeleteImageRequest, ImageId=img))),
                         (404, "InvalidImageId.NotFound"))

    # -- DescribeImageSupportInstanceTypes -------------------------------------------------

    def test_instance_types_for_an_image(self):
        alice, bob = self.account("alice"), self.account("bob")
        img = self.custom(alice, "typed")
        r = self.tea(alice).describe_image_support_instance_types(
            m.DescribeImageSupportInstanceTypesRequest(region_id=REGION, image_id=img, action_type="CreateEcs")).body
        types = {t.instance_type_id: t for t in r.instance_types.instance_type}
        self.assertEqual(r.image_id, img)
        self.assertIn("ecs.g7.large", types)
        self.assertNotIn("ecs.g8y.large", types, "an x86_64 image does not run on arm64 types")
        self.assertEqual((types["ecs.g7.large"].cpu_core_count, types["ecs.g7.large"].memory_size,
                          types["ecs.g7.large"].instance_type_family), (2, 8.0, "ecs.g7"))
        req = legacy_req(DescribeImageSupportInstanceTypesRequest,
                         Filters=[{"Key": "imageId", "Value": self.public}])
        raw = lcall(self.legacy(alice), req)
        schema(self, raw, "DescribeImageSupportInstanceTypes")
        self.assertEqual(raw["ImageId"], self.public)
        self.assertEqual({t["InstanceTypeId"] for t in raw["InstanceTypes"]["InstanceType"]}, set(types))
        self.assertEqual(code_of(lambda: self.tea(bob, v1=True).describe_image_support_instance_types(
            m.DescribeImageSupportInstanceTypesRequest(region_id=REGION, image_id=img))),
            (404, "InvalidImageId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(bob), legacy_req(
            DescribeImageSupportInstanceTypesRequest, ImageId=img))), (404, "InvalidImageId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(
            DescribeImageSupportInstanceTypesRequest, ImageId=img, ActionType="Reboot"))), (400, "InvalidParamter"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), DescribeImageSupportInstanceTypesRequest())),
                         (400, "MissingParameter"))

    # -- DescribeTasks / DescribeTaskAttribute / CancelTask --------------------------------

    def test_tasks_of_an_account(self):
        alice, bob = self.account("alice"), self.account("bob")
        before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        imgs = [self.custom(alice, "task-%d" % i) for i in range(2)]
        r = self.tea(alice).describe_tasks(m.DescribeTasksRequest(region_id=REGION, task_action="ImportImage")).body
        self.assertEqual(r.total_count, 2)
        self.assertEqual(sorted(t.resource_id for t in r.task_set.task), sorted(imgs))
        t = r.task_set.task[0]
        self.assertRegex(t.task_id, r"^t-[a-z0-9]{8}$")
        self.assertEqual((t.task_action, t.task_status, t.support_cancel), ("ImportImage", "Finished", "false"))
        self.assertRegex(t.creation_time, r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
        self.assertRegex(t.finished_time, r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
        task_ids = [x.task_id for x in r.task_set.task]
        # Legacy SDK: filters by ids, resources, status, time; paging; raw schema.
        raw = lcall(self.legacy(alice), legacy_req(DescribeTasksRequest, TaskIds=",".join(task_ids + ["t-zzzzzzzz"]),
                                                   TaskStatus="Finished", StartTime=before, PageSize=1, PageNumber=2))
        schema(self, raw, "DescribeTasks")
        self.assertEqual((raw["TotalCount"], raw["PageNumber"], len(raw["TaskSet"]["Task"])), (2, 2, 1))
        raw = lcall(self.legacy(alice), legacy_req(DescribeTasksRequest, ResourceIdss=[imgs[1]]))
        self.assertEqual([x["ResourceId"] for x in raw["TaskSet"]["Task"]], [imgs[1]])
        for kw in ({"TaskStatus": "Failed"}, {"TaskAction": "ExportImage"}, {"EndTime": "2001-01-01T00:00:00Z"}):
            raw = lcall(self.legacy(alice), legacy_req(DescribeTasksRequest, **kw))
            self.assertEqual(raw["TotalCount"], 0, kw)
        # Bob has no tasks, sees none of Alice's, and cannot read or cancel them.
        self.assertEqual(self.tea(bob, v1=True).describe_tasks(m.DescribeTasksRequest(
            region_id=REGION, task_ids=",".join(task_ids))).body.total_count, 0)
        tid = task_ids[0]
        self.assertEqual(code_of(lambda: self.tea(bob).describe_task_attribute(
            m.DescribeTaskAttributeRequest(region_id=REGION, task_id=tid))), (400, "InvalidTaskId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(bob), legacy_req(CancelTaskRequest, TaskId=tid))),
                         (400, "InvalidTaskId.NotFound"))
        # DescribeTaskAttribute through both SDKs.
        a = self.tea(alice).describe_task_attribute(m.DescribeTaskAttributeRequest(region_id=REGION, task_id=tid)).body
        self.assertEqual((a.task_id, a.task_action, a.task_status, a.task_process, a.total_count, a.success_count),
                         (tid, "ImportImage", "Finished", "100%", 1, 1))
        op = a.operation_progress_set.operation_progress[0]
        self.assertEqual(op.operation_status, "Success")
        self.assertIn(op.related_item_set.related_item[0].value, imgs)
        raw = lcall(self.legacy(alice), legacy_req(DescribeTaskAttributeRequest, TaskId=tid))
        schema(self, raw, "DescribeTaskAttribute")
        # A publication cannot be cancelled (only imports and exports can); unknown ids are not found.
        self.assertEqual(code_of(lambda: self.tea(alice).cancel_task(m.CancelTaskRequest(region_id=REGION,
                                                                                         task_id=tid))),
                         (403, "InvalidTaskId.TaskActionNotSupport"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(CancelTaskRequest, TaskId=tid))),
                         (403, "InvalidTaskId.TaskActionNotSupport"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(CancelTaskRequest,
                                                                                TaskId="t-zzzzzzzz"))),
                         (400, "InvalidTaskId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(self.legacy(alice), legacy_req(DescribeTasksRequest,
                                                                                TaskAction="Reboot"))),
                         (400, "InvalidParameter"))
        self.assertEqual(code_of(lambda: self.tea(alice).describe_tasks(m.DescribeTasksRequest(
            region_id=REGION, start_time="yesterday"))), (400, "InvalidParameter"))

    # -- marketplace -----------------------------------------------------------------------

    def test_marketplace_images_through_both_sdks(self):
        provider, buyer = self.account("provider"), self.account("buyer")
        src = self.publish("lamp-stack", account=provider)
        listing = json.loads(self.server.admin("market", "submit", "--account", provider["AccountId"], "--price",
                                               "0.25", src, "--output", "json").stdout)
        market = ali(json.loads(self.server.admin("market", "approve", listing["ListingId"], "--output",
                                                  "json").stdout)["ImageId"])
        r = self.describe(self.tea(buyer), image_owner_alias="marketplace")
        self.assertEqual([(i.image_id, i.image_owner_alias) for i in r.images.image], [(market, "marketplace")])
        self.assertEqual(r.images.image[0].image_owner_id, int(provider["AccountId"]))
        raw = lcall(self.legacy(buyer), legacy_req(DescribeImagesRequest, ImageOwnerAlias="marketplace"))
        schema(self, raw, "DescribeImages")
        tags = {t["TagKey"]: t["TagValue"] for t in raw["Images"]["Image"][0]["Tags"]["Tag"]}
        self.assertEqual(tags.get("ikon:provider"), provider["AccountId"])
        # Not among system / self / others, and the buyer cannot change or share it.
        for alias in ("system", "self", "others"):
            self.assertNotIn(market, [i.image_id for i in self.describe(self.tea(buyer), image_owner_alias=alias,
                                                                          page_size=100).images.image])
        self.assertEqual(code_of(lambda: lcall(self.legacy(buyer), legacy_req(
            ModifyImageAttributeRequest, ImageId=market, ImageName="mine"))), (403, "OperationDenied"))
        self.assertEqual(code_of(lambda: self.tea(buyer).modify_image_share_permission(
            m.ModifyImageSharePermissionRequest(region_id=REGION, image_id=market,
                                                add_account=[provider["AccountId"]]))), (403, "OperationDenied"))
        # It runs instances like any image.
        ids = self.tea(buyer).run_instances(m.RunInstancesRequest(
            region_id=REGION, image_id=market, instance_type="ecs.g7.large")).body.instance_id_sets.instance_id_set
        r = self.tea(buyer).describe_instances(m.DescribeInstancesRequest(region_id=REGION,
                                                                          instance_ids=json.dumps(ids))).body
        self.assertEqual([i.image_id for i in r.instances.instance], [market])

    # -- the same objects through the Tencent dialect --------------------------------------

    def test_tencent_dialect_under_the_alibaba_preset(self):
        alice = self.account("alice")
        img = self.custom(alice, "both-dialects")
        cvm = harness.sdk(self.server, alice, region=REGION)
        regions = {r.Region for r in cvm.DescribeRegions(harness.req("DescribeRegions")).RegionSet}
        self.assertEqual(regions, ALIBABA_REGIONS)
        zones = {z.Zone for z in cvm.DescribeZones(harness.req("DescribeZones")).ZoneSet}
        self.assertIn("cn-hangzhou-h", zones)
        r = cvm.DescribeImages(harness.req("DescribeImages", ImageIds=["img-" + img[2:]]))
        self.assertEqual([i.ImageName for i in r.ImageSet], ["both-dialects"])
        e = harness.sdk_error(lambda: harness.sdk(self.server, alice, region="ap-guangzhou").DescribeImages(
            harness.req("DescribeImages")))
        self.assertEqual(e.code, "UnsupportedRegion")


class AlibabaUnderTencentPreset(harness.ServerTestCase):
    """Both dialects answer under either preset: the Alibaba SDKs against the default
    (Tencent) preset, with its region ids."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(name="e2e-ali-tc")
        cls.servers = (cls.server,)
        cls.work = tempfile.mkdtemp(prefix="ikon-e2e-ali-img-")
        cls.disk = harness.make_disk(cls.work)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_alibaba_sdks_with_tencent_region_ids(self):
        acc = self.server.account("alice")
        img = "m-" + self.server.publish(self.disk, region="ap-guangzhou", name="gz", account=acc)["ImageId"][4:]
        r = tea(self.server, acc, region="ap-guangzhou").describe_regions(m.DescribeRegionsRequest()).body
        self.assertEqual({x.region_id for x in r.regions.region}, set(harness.REGIONS))
        raw = lcall(legacy(self.server, acc, region="ap-guangzhou"),
                    legacy_req(DescribeImagesRequest, ImageOwnerAlias="self"))
        self.assertEqual([i["ImageId"] for i in raw["Images"]["Image"]], [img])
        self.assertEqual(code_of(lambda: tea(self.server, acc).describe_images(
            m.DescribeImagesRequest(region_id=REGION))), (404, "InvalidRegionId.NotFound"))
        self.assertTrue(re.fullmatch(r"m-[a-z0-9]{8}", img))


if __name__ == "__main__":
    import unittest
    unittest.main()

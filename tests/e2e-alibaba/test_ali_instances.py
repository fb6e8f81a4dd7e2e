"""End-to-end: instances, disks, snapshots and images made from them, through both Alibaba
SDKs against `ikon serve --preset alibaba`: RunInstances, DescribeInstances, DescribeDisks,
CreateSnapshot, DescribeSnapshots, CreateImage (InstanceId / SnapshotId / DiskDeviceMapping),
DeleteSnapshot, ReplaceSystemDisk, DeleteInstance and DeleteInstances, each with its error
paths (another account's resources, dry runs, malformed values). The Tea SDK sends no
RegionId for DeleteInstance, ReplaceSystemDisk, CreateSnapshot and DeleteSnapshot: the server
acts in the resource's region. Ids are `i-`/`d-`/`s-`/`m-` forms of the Tencent dialect's
`ins-`/`disk-`/`snap-`/`img-` ids of the same objects.
"""

import json
import shutil
import tempfile
import time

from ali import REGION, ali, code_of, harness, lcall, legacy, legacy_req, m, schema, tea
from aliyunsdkecs.request.v20140526.CreateImageRequest import CreateImageRequest
from aliyunsdkecs.request.v20140526.CreateSnapshotRequest import CreateSnapshotRequest
from aliyunsdkecs.request.v20140526.DeleteInstanceRequest import DeleteInstanceRequest
from aliyunsdkecs.request.v20140526.DeleteInstancesRequest import DeleteInstancesRequest
from aliyunsdkecs.request.v20140526.DeleteSnapshotRequest import DeleteSnapshotRequest
from aliyunsdkecs.request.v20140526.DescribeDisksRequest import DescribeDisksRequest
from aliyunsdkecs.request.v20140526.DescribeImagesRequest import DescribeImagesRequest
from aliyunsdkecs.request.v20140526.DescribeInstancesRequest import DescribeInstancesRequest
from aliyunsdkecs.request.v20140526.DescribeSnapshotsRequest import DescribeSnapshotsRequest
from aliyunsdkecs.request.v20140526.ReplaceSystemDiskRequest import ReplaceSystemDiskRequest
from aliyunsdkecs.request.v20140526.RunInstancesRequest import RunInstancesRequest

ZONE = "cn-hangzhou-h"


class Instances(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(name="e2e-ali-ins", preset="alibaba")
        cls.servers = (cls.server,)
        cls.work = tempfile.mkdtemp(prefix="ikon-e2e-ali-ins-")
        cls.disk = harness.make_disk(cls.work)
        cls.public = ali(cls.server.publish(cls.disk, region=REGION, name="Debian 12 64bit",
                                            family="debian-e2e")["ImageId"])

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def run_tea(self, acc, **kw):
        kw.setdefault("image_id", self.public)
        kw.setdefault("instance_type", "ecs.g7.large")
        kw.setdefault("zone_id", ZONE)
        r = tea(self.server, acc).run_instances(m.RunInstancesRequest(region_id=REGION, **kw)).body
        return r.instance_id_sets.instance_id_set

    def instances(self, acc, ids=None, **kw):
        if ids is not None:
            kw["instance_ids"] = json.dumps(ids)
        kw.setdefault("page_size", 100)
        return tea(self.server, acc).describe_instances(m.DescribeInstancesRequest(region_id=REGION, **kw)).body

    def disks(self, acc, **kw):
        return tea(self.server, acc, v1=True).describe_disks(
            m.DescribeDisksRequest(region_id=REGION, page_size=100, **kw)).body

    def wait_available(self, acc, image_id):
        """Polls until the image made by CreateImage's task is Available (or failed)."""
        deadline = time.time() + 120
        while time.time() < deadline:
            r = tea(self.server, acc).describe_images(
                m.DescribeImagesRequest(region_id=REGION, image_id=image_id, status="ALL")).body
            self.assertEqual(r.total_count, 1)
            status = r.images.image[0].status
            if status != "Creating":
                self.assertEqual(status, "Available")
                return r.images.image[0]
            time.sleep(0.2)
        raise AssertionError("image %s stayed Creating:\n%s" % (image_id, self.server.log()))

    def test_image_names_follow_the_alibaba_policy(self):
        """Alibaba's name rule (2 to 128 characters, from the preset's policy) holds through
        CreateImage and ModifyImageAttribute: 128 characters are accepted, 129 refused."""
        acc = self.server.account("long-names")
        c = tea(self.server, acc)
        (ins,) = self.run_tea(acc)
        name = "n" * 128
        img = c.create_image(m.CreateImageRequest(region_id=REGION, instance_id=ins, image_name=name)).body.image_id
        self.assertEqual(self.wait_available(acc, img).image_name, name)
        self.assertEqual(code_of(lambda: c.create_image(m.CreateImageRequest(
            region_id=REGION, instance_id=ins, image_name="m" * 129))), (400, "InvalidImageName.Malformed"))
        renamed = "r" * 128
        c.modify_image_attribute(m.ModifyImageAttributeRequest(region_id=REGION, image_id=img, image_name=renamed))
        r = c.describe_images(m.DescribeImagesRequest(region_id=REGION, image_id=img)).body
        self.assertEqual(r.images.image[0].image_name, renamed)
        self.assertEqual(code_of(lambda: c.modify_image_attribute(m.ModifyImageAttributeRequest(
            region_id=REGION, image_id=img, image_name="r" * 129))), (400, "InvalidImageName.Malformed"))
        r = c.describe_images(m.DescribeImagesRequest(region_id=REGION, image_id=img)).body
        self.assertEqual(r.images.image[0].image_name, renamed)

    def test_instance_lifecycle_through_both_sdks(self):
        alice, bob = self.server.account("alice"), self.server.account("bob")
        # -- RunInstances ------------------------------------------------------------------
        self.assertEqual(code_of(lambda: self.run_tea(alice, amount=2, dry_run=True)), (400, "DryRunOperation"))
        self.assertEqual(self.instances(alice).total_count, 0)
        ids = self.run_tea(alice, amount=2, instance_name="web",
                           system_disk=m.RunInstancesRequestSystemDisk(size="60", category="cloud_essd"),
                           data_disk=[m.RunInstancesRequestDataDisk(size=20, category="cloud_ssd",
                                                                    delete_with_instance=False)])
        self.assertEqual(len(ids), 2)
        self.assertTrue(all(i.startswith("i-") for i in ids), ids)
        req = legacy_req(RunInstancesRequest, ImageFamily="debian-e2e", InstanceType="ecs.c7.large",
                         SystemDiskSize="40")
        raw = lcall(legacy(self.server, alice), req)
        schema(self, raw, "RunInstances")
        (third,) = raw["InstanceIdSets"]["InstanceIdSet"]
        for fn, code in [
            (lambda: self.run_tea(alice, zone_id="cn-shanghai-b"), (404, "InvalidZoneId.NotFound")),
            (lambda: self.run_tea(alice, amount=101), (403, "InvalidParam.Amount")),
            (lambda: self.run_tea(alice, system_disk=m.RunInstancesRequestSystemDisk(category="floppy")),
             (400, "InvalidSystemDiskCategory.ValueNotSupported")),
            (lambda: self.run_tea(alice, image_id="m-zzzzzzzz"), (404, "InvalidImageId.NotFound")),
            (lambda: lcall(legacy(self.server, alice), legacy_req(RunInstancesRequest, InstanceType="ecs.g7.large")),
             (400, "MissingParameter")),
            (lambda: lcall(legacy(self.server, alice), legacy_req(
                RunInstancesRequest, ImageId=self.public, InstanceType="ecs.g7.large", DryRun=True)),
             (400, "DryRunOperation")),
        ]:
            self.assertEqual(code_of(fn), code)
        # -- DescribeInstances -------------------------------------------------------------
        r = self.instances(alice, ids)
        self.assertEqual(r.total_count, 2)
        i = r.instances.instance[0]
        self.assertEqual((i.status, i.image_id, i.zone_id, i.region_id, i.cpu, i.memory, i.instance_type_family),
                         ("Running", self.public, ZONE, REGION, 2, 8192, "ecs.g7"))
        self.assertEqual(sorted(x.instance_name for x in r.instances.instance), ["web-1", "web-2"])
        self.assertRegex(i.creation_time, r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
        self.assertEqual(self.instances(alice).total_count, 3)
        everything = [x.instance_id for x in self.instances(alice).instances.instance]
        r = self.instances(alice, page_size=1, page_number=3)
        self.assertEqual((r.total_count, [x.instance_id for x in r.instances.instance]), (3, everything[2:]))
        self.assertEqual(self.instances(alice, status="Stopped").total_count, 0)
        raw = lcall(legacy(self.server, alice), legacy_req(DescribeInstancesRequest, InstanceIds=json.dumps([third]),
                                                         ZoneId="cn-hangzhou-b"))
        schema(self, raw, "DescribeInstances")
        self.assertEqual([x["InstanceId"] for x in raw["Instances"]["Instance"]], [third])
        self.assertEqual(raw["Instances"]["Instance"][0]["ZoneId"], "cn-hangzhou-b", "the region's first zone")
        self.assertEqual(self.instances(bob, ids).total_count, 0)
        self.assertEqual(code_of(lambda: self.instances(alice, status="Frozen")), (404, "InvalidStatus.NotFound"))
        self.assertEqual(code_of(lambda: lcall(legacy(self.server, alice), legacy_req(
            DescribeInstancesRequest, InstanceIds="i-abc"))), (400, "InvalidInstanceIds.Malformed"))
        self.assertEqual(code_of(lambda: self.instances(alice, dry_run=True)), (400, "DryRunOperation"))
        # -- DescribeDisks -----------------------------------------------------------------
        first = ids[0]
        raw = lcall(legacy(self.server, alice), legacy_req(DescribeDisksRequest, InstanceId=first))
        schema(self, raw, "DescribeDisks")
        d = sorted(raw["Disks"]["Disk"], key=lambda x: x["Device"])
        self.assertEqual([(x["Type"], x["Size"], x["Category"], x["Device"], x["Status"], x["InstanceId"])
                          for x in d],
                         [("system", 60, "cloud_essd", "/dev/xvda", "In_use", first),
                          ("data", 20, "cloud_ssd", "/dev/xvdb", "In_use", first)])
        sys_disk, data_disk = d[0]["DiskId"], d[1]["DiskId"]
        self.assertRegex(sys_disk, r"^d-[a-z0-9]{8}$")
        self.assertEqual(self.disks(alice, disk_type="system").total_count, 3)
        self.assertEqual(self.disks(alice, disk_ids=json.dumps([sys_disk, "d-zzzzzzzz"])).total_count, 1)
        self.assertEqual(self.disks(bob).total_count, 0)
        self.assertEqual(code_of(lambda: self.disks(alice, disk_type="floppy")), (400, "InvalidDiskType.ValueNotSupported"))
        # -- CreateSnapshot (the Tea model has no RegionId) --------------------------------
        ctea = tea(self.server, alice)
        snap_sys = ctea.create_snapshot(m.CreateSnapshotRequest(disk_id=sys_disk, snapshot_name="sys-1")).body.snapshot_id
        raw = lcall(legacy(self.server, alice), legacy_req(CreateSnapshotRequest, DiskId=data_disk,
                                                         SnapshotName="data-1", RetentionDays=7))
        schema(self, raw, "CreateSnapshot")
        snap_data = raw["SnapshotId"]
        self.assertRegex(snap_sys, r"^s-[a-z0-9]{8}$")
        for fn, code in [
            (lambda: tea(self.server, bob).create_snapshot(m.CreateSnapshotRequest(disk_id=sys_disk)),
             (404, "InvalidDiskId.NotFound")),
            (lambda: lcall(legacy(self.server, bob), legacy_req(CreateSnapshotRequest, DiskId=sys_disk)),
             (404, "InvalidDiskId.NotFound")),
            (lambda: ctea.create_snapshot(m.CreateSnapshotRequest(disk_id=sys_disk, snapshot_name="auto-x")),
             (400, "InvalidSnapshotName.Malformed")),
            (lambda: ctea.create_snapshot(m.CreateSnapshotRequest(disk_id="d-zzzzzzzz")), (404, "InvalidDiskId.NotFound")),
        ]:
            self.assertEqual(code_of(fn), code)
        # -- DescribeSnapshots -------------------------------------------------------------
        r = ctea.describe_snapshots(m.DescribeSnapshotsRequest(region_id=REGION, instance_id=first)).body
        self.assertEqual(sorted(s.snapshot_id for s in r.snapshots.snapshot), sorted([snap_sys, snap_data]))
        s = [s for s in r.snapshots.snapshot if s.snapshot_id == snap_sys][0]
        self.assertEqual((s.status, s.progress, s.source_disk_id, s.source_disk_size, s.source_disk_type, s.usage),
                         ("accomplished", "100%", sys_disk, "60", "system", "none"))
        raw = lcall(legacy(self.server, alice), legacy_req(DescribeSnapshotsRequest, DiskId=data_disk))
        schema(self, raw, "DescribeSnapshots")
        self.assertEqual([x["SnapshotId"] for x in raw["Snapshots"]["Snapshot"]], [snap_data])
        r = ctea.describe_snapshots(m.DescribeSnapshotsRequest(region_id=REGION, source_disk_type="System")).body
        self.assertEqual([x.snapshot_id for x in r.snapshots.snapshot], [snap_sys])
        r = tea(self.server, bob).describe_snapshots(m.DescribeSnapshotsRequest(
            region_id=REGION, snapshot_ids=json.dumps([snap_sys]))).body
        self.assertEqual(r.total_count, 0)
        self.assertEqual(code_of(lambda: ctea.describe_snapshots(m.DescribeSnapshotsRequest(
            region_id=REGION, snapshot_ids="s-1,s-2"))), (403, "InvalidSnapshotIds.Malformed"))
        # -- CreateImage from an instance, a snapshot, and disk device mappings ------------
        from_instance = ctea.create_image(m.CreateImageRequest(
            region_id=REGION, instance_id=first, image_name="from-instance", image_family="web-e2e")).body.image_id
        raw = lcall(legacy(self.server, alice), legacy_req(CreateImageRequest, SnapshotId=snap_sys,
                                                         ImageName="from-snapshot"))
        schema(self, raw, "CreateImage")
        from_snapshot = raw["ImageId"]
        from_mapping = ctea.create_image(m.CreateImageRequest(region_id=REGION, image_name="from-mapping",
                                                              disk_device_mapping=[
            m.CreateImageRequestDiskDeviceMapping(snapshot_id=snap_sys),
            m.CreateImageRequestDiskDeviceMapping(snapshot_id=snap_data)])).body.image_id
        for img, disks in ((from_instance, 2), (from_snapshot, 1), (from_mapping, 2)):
            self.assertRegex(img, r"^m-[a-z0-9]{8}$")
            i = self.wait_available(alice, img)
            self.assertEqual((i.image_owner_alias, len(i.disk_device_mappings.disk_device_mapping)), ("self", disks))
        self.assertEqual(i.disk_device_mappings.disk_device_mapping[1].type, "data")
        for fn, code in [
            (lambda: ctea.create_image(m.CreateImageRequest(region_id=REGION, image_name="nothing")),
             (400, "MissingParameter")),
            (lambda: ctea.create_image(m.CreateImageRequest(region_id=REGION, image_name="data-only",
                                                            disk_device_mapping=[m.CreateImageRequestDiskDeviceMapping(
                                                                snapshot_id=snap_data)])),
             (400, "InvalidParameter")),
            (lambda: tea(self.server, bob).create_image(m.CreateImageRequest(
                region_id=REGION, instance_id=first, image_name="stolen")), (404, "InvalidInstanceId.NotFound")),
            (lambda: lcall(legacy(self.server, bob), legacy_req(CreateImageRequest, SnapshotId=snap_sys,
                                                              ImageName="stolen")), (404, "InvalidSnapshotId.NotFound")),
            (lambda: lcall(legacy(self.server, alice), legacy_req(CreateImageRequest, InstanceId=first,
                                                                ImageName="from-instance")),
             (400, "InvalidImageName.Duplicated")),
            (lambda: ctea.create_image(m.CreateImageRequest(region_id=REGION, instance_id=first,
                                                            image_name="dry", dry_run=True)), (400, "DryRunOperation")),
        ]:
            self.assertEqual(code_of(fn), code)
        # The Tencent dialect sees the same image under its own id.
        cvm = harness.sdk(self.server, alice, region=REGION)
        r = cvm.DescribeImages(harness.req("DescribeImages", ImageIds=["img-" + from_instance[2:]]))
        self.assertEqual([x.ImageName for x in r.ImageSet], ["from-instance"])
        # -- DeleteSnapshot: one backing an image is refused (delete the image first) ------
        self.assertEqual(code_of(lambda: ctea.delete_snapshot(m.DeleteSnapshotRequest(snapshot_id=snap_sys))),
                         (403, "SnapshotCreatedImage"))
        self.assertEqual(code_of(lambda: lcall(legacy(self.server, alice), legacy_req(
            DeleteSnapshotRequest, SnapshotId=snap_data))), (403, "SnapshotCreatedImage"))
        spare = ctea.create_snapshot(m.CreateSnapshotRequest(disk_id=data_disk, snapshot_name="spare")).body.snapshot_id
        self.assertEqual(code_of(lambda: tea(self.server, bob).delete_snapshot(
            m.DeleteSnapshotRequest(snapshot_id=spare))), (404, "InvalidSnapshotId.NotFound"))
        lcall(legacy(self.server, alice), legacy_req(DeleteSnapshotRequest, SnapshotId=spare))
        self.assertEqual(code_of(lambda: ctea.delete_snapshot(m.DeleteSnapshotRequest(snapshot_id=spare))),
                         (404, "InvalidSnapshotId.NotFound"))
        # -- ReplaceSystemDisk (no RegionId from Tea) --------------------------------------
        r = ctea.replace_system_disk(m.ReplaceSystemDiskRequest(instance_id=first, image_id=from_snapshot)).body
        self.assertEqual(r.disk_id, sys_disk, "the system disk keeps its id")
        self.assertEqual(self.instances(alice, [first]).instances.instance[0].image_id, from_snapshot)
        raw = lcall(legacy(self.server, alice), legacy_req(ReplaceSystemDiskRequest, InstanceId=first,
                                                         ImageId=self.public, SystemDiskSize=80))
        schema(self, raw, "ReplaceSystemDisk")
        self.assertEqual(self.disks(alice, disk_ids=json.dumps([sys_disk])).disks.disk[0].size, 80)
        for fn, code in [
            (lambda: tea(self.server, bob).replace_system_disk(m.ReplaceSystemDiskRequest(
                instance_id=first, image_id=self.public)), (404, "InvalidInstanceId.NotFound")),
            (lambda: ctea.replace_system_disk(m.ReplaceSystemDiskRequest(instance_id=first, image_id="m-zzzzzzzz")),
             (404, "InvalidImageId.NotFound")),
            (lambda: lcall(legacy(self.server, alice), legacy_req(ReplaceSystemDiskRequest, InstanceId=first)),
             (400, "MissingParameter")),
            (lambda: ctea.replace_system_disk(m.ReplaceSystemDiskRequest(
                instance_id=first, image_id=self.public, system_disk=m.ReplaceSystemDiskRequestSystemDisk(size=10))),
             (400, "InvalidParameter")),
        ]:
            self.assertEqual(code_of(fn), code)
        # -- DeleteInstance (no RegionId from Tea) and DeleteInstances ---------------------
        self.assertEqual(code_of(lambda: ctea.delete_instance(m.DeleteInstanceRequest(instance_id=first, dry_run=True))),
                         (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: tea(self.server, bob).delete_instance(
            m.DeleteInstanceRequest(instance_id=first))), (404, "InvalidInstanceId.NotFound"))
        self.assertEqual(code_of(lambda: lcall(legacy(self.server, bob), legacy_req(
            DeleteInstancesRequest, InstanceIds=[first]))), (404, "InvalidInstanceId.NotFound"))
        ctea.delete_instance(m.DeleteInstanceRequest(instance_id=first, force=True))
        self.assertEqual(self.instances(alice, [first]).total_count, 0)
        # Its data disk was not to be deleted with it: it stays, detached.
        r = self.disks(alice, status="Available")
        self.assertEqual([(x.disk_id, x.status, x.instance_id) for x in r.disks.disk], [(data_disk, "Available", "")])
        self.assertEqual(self.disks(alice, status="In_use").total_count, 3)
        self.assertEqual(code_of(lambda: ctea.delete_instances(m.DeleteInstancesRequest(
            region_id=REGION, instance_id=[ids[1], third], dry_run=True))), (400, "DryRunOperation"))
        self.assertEqual(code_of(lambda: ctea.delete_instances(m.DeleteInstancesRequest(
            region_id=REGION, instance_id=[ids[1], "i-zzzzzzzz"]))), (404, "InvalidInstanceId.NotFound"))
        self.assertEqual(self.instances(alice).total_count, 2, "all or nothing")
        ctea.delete_instances(m.DeleteInstancesRequest(region_id=REGION, instance_id=[ids[1]], force=True))
        lcall(legacy(self.server, alice), legacy_req(DeleteInstancesRequest, InstanceIds=[third], Force=True))
        self.assertEqual(self.instances(alice).total_count, 0)
        self.assertEqual(code_of(lambda: lcall(legacy(self.server, alice), legacy_req(
            DeleteInstanceRequest, InstanceId=third))), (404, "InvalidInstanceId.NotFound"))
        # Images made from them live on; their snapshots still back them.
        r = lcall(legacy(self.server, alice), legacy_req(DescribeImagesRequest, ImageOwnerAlias="self"))
        self.assertEqual(r["TotalCount"], 3)

"""Instances, snapshots and images made from them, driven by Tencent's own SDK (CvmClient,
CbsClient) and tccli against a real `ikon serve`, with instance disks written and read over
NBD by qemu-io, compared by qemu-img and listed by nbdinfo:

run instances from a public image -> write a known pattern into one instance's disk over NBD
-> create an image from that instance -> run a new instance from it and read the pattern
back -> re-install the first instance and see the pattern gone -> snapshots and images from
snapshots -> terminate, delete, collect garbage; the store grows only by the written chunks
and shrinks back only when nothing references them."""

import hashlib
import hmac
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time

import harness as h
from harness import req, sdk_error

from tencentcloud.cbs.v20170312 import cbs_client, models as cbs_models
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

ZONE = "ap-guangzhou-3"
MIB = 1 << 20
CONFIG = """[limits]
custom_images_per_region = 4
share_accounts_max = 50
daily_operations = 50
daily_limited_actions = ["CreateImage", "ImportImage", "SyncImages", "ExportImages"]
"""

S = None
WORK = None
DISK = None
PUBLIC = None


def setUpModule():
    global S, WORK, DISK, PUBLIC
    h.require_tools()
    for tool in ("qemu-io", "qemu-nbd", "nbdinfo", "qemu-system-x86_64"):
        if not shutil.which(tool):
            raise AssertionError("%s is required (scripts/install-test-deps.sh)" % tool)
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-inst-")
    DISK = h.make_disk(WORK, size_mib=32, data_mib=2)
    S = h.Server(CONFIG, "inst")
    if not S.nbd:
        raise AssertionError("ikon serve did not print its NBD address:\n" + S.log())
    PUBLIC = S.publish(DISK, name="Debian 12 inst-public", os_name="Debian 12 64bit", platform="Debian")["ImageId"]


def tearDownModule():
    try:
        if S:
            S.stop()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


def cbs(acc):
    hp = HttpProfile(endpoint=S.addr, protocol="http")
    cred = credential.Credential(acc["SecretId"], acc["SecretKey"])
    return cbs_client.CbsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=hp))


def cbs_req(name, **fields):
    m = getattr(cbs_models, name + "Request")()
    for k, v in fields.items():
        if not hasattr(m, k):
            raise AttributeError("%sRequest has no field %s" % (name, k))
        setattr(m, k, v)
    return m


def nbd_url(acc, disk_id, secret_key=None):
    token = hmac.new((secret_key or acc["SecretKey"]).encode(), ("ikon-nbd-v1:" + disk_id).encode(),
                     hashlib.sha256).hexdigest()
    return "nbd://%s/%s/%s/%s" % (S.nbd, disk_id, acc["SecretId"], token)


def qemu_io(url, *cmds, check=True):
    args = ["qemu-io", "-f", "raw", url]
    for c in cmds:
        args += ["-c", c]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    if check and (p.returncode != 0 or "failed" in out.lower()):
        raise AssertionError("qemu-io %s: exit %d\n%s" % (cmds, p.returncode, out))
    return p.returncode, out


def usage():
    return json.loads(S.admin("usage", "--output", "json").stdout)


class Instances(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def cvm(self, acc):
        return h.sdk(S, acc)

    def run_instances(self, c, image, count=1, name="inst", size=20, **kw):
        r = c.RunInstances(req("RunInstances", ImageId=image, Placement={"Zone": ZONE}, InstanceCount=count,
                               InstanceName=name, SystemDisk={"DiskSize": size, "DiskType": "CLOUD_PREMIUM"}, **kw))
        self.assertEqual(len(r.InstanceIdSet), count)
        return r.InstanceIdSet

    def describe(self, c, ids):
        r = c.DescribeInstances(req("DescribeInstances", InstanceIds=ids))
        self.assertEqual(r.TotalCount, len(ids))
        return {i.InstanceId: i for i in r.InstanceSet}

    def wait_image(self, c, image_id, want="NORMAL"):
        deadline = time.time() + 60
        while time.time() < deadline:
            r = c.DescribeImages(req("DescribeImages", ImageIds=[image_id]))
            st = r.ImageSet[0].ImageState
            if st == want:
                return r.ImageSet[0]
            if st not in ("CREATING",):
                self.fail("image %s became %s" % (image_id, st))
            time.sleep(0.2)
        self.fail("image %s did not become %s" % (image_id, want))

    def test_lifecycle_over_nbd(self):
        acc = S.account("inst")
        c = self.cvm(acc)
        base = usage()

        # Batch deployment: 3 instances from a public image copy nothing.
        ids = self.run_instances(c, PUBLIC, count=3, name="web")
        inst = self.describe(c, ids)
        for i in inst.values():
            self.assertEqual(i.InstanceState, "RUNNING")
            self.assertEqual(i.ImageId, PUBLIC)
            self.assertEqual(i.Placement.Zone, ZONE)
            self.assertEqual(i.SystemDisk.DiskSize, 20)
            self.assertRegex(i.SystemDisk.DiskId, r"^disk-[a-z0-9]{8}$")
            self.assertEqual(i.OsName, "Debian 12 64bit")
        self.assertEqual(usage()["BytesHeld"], base["BytesHeld"], "running instances stored data")
        a, b, untouched = ids
        disk_a = inst[a].SystemDisk.DiskId

        # An untouched instance disk reads exactly as the image (qemu-img is the oracle);
        # nbdinfo sees a 20 GiB disk.
        p = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", DISK,
                            nbd_url(acc, inst[untouched].SystemDisk.DiskId)], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run(["nbdinfo", "--size", nbd_url(acc, disk_a)], capture_output=True, text=True)
        self.assertEqual(p.stdout.strip(), str(20 << 30), p.stderr)

        # Write a pattern over NBD: one whole chunk at 4 MiB, 64 KiB inside the chunk at 10 MiB.
        qemu_io(nbd_url(acc, disk_a), "write -P 0x5a 4M 1M", "write -P 0xa5 10M 64k", "flush")
        qemu_io(nbd_url(acc, disk_a), "read -P 0x5a 4M 1M", "read -P 0xa5 10M 64k", "read -P 0 11M 1M")
        grown = usage()
        self.assertEqual(grown["BytesHeld"] - base["BytesHeld"], 2 * MIB,
                         "the store must grow by exactly the two written chunks")

        # The other instances and the image did not change.
        qemu_io(nbd_url(acc, inst[b].SystemDisk.DiskId), "read -P 0 4M 1M", "read -P 0 10M 64k")

        # Access: another account's key, a wrong token, a bare disk id: nothing is served.
        other = S.account("intruder")
        for url in (nbd_url(other, disk_a), nbd_url(acc, disk_a, secret_key="x" * 32),
                    "nbd://%s/%s" % (S.nbd, disk_a)):
            rc, out = qemu_io(url, "read 0 512", check=False)
            self.assertFalse(rc == 0 and "read 512/512" in out, "served without a valid token: %s" % out)

        # Image from the instance: CREATING -> NORMAL, shares the disk's chunks.
        image = c.CreateImage(req("CreateImage", InstanceId=a, ImageName="from-web",
                                  ImageDescription="pattern")).ImageId
        self.assertRegex(image, r"^img-[a-z0-9]{8}$")
        img = self.wait_image(c, image)
        self.assertEqual(img.ImageSource, "CREATE_IMAGE")
        self.assertEqual(img.ImageType, "PRIVATE_IMAGE")
        self.assertEqual(img.ImageSize, 20)
        self.assertEqual([s.DiskUsage for s in img.SnapshotSet], ["SYSTEM_DISK"])
        self.assertEqual(usage()["BytesHeld"], grown["BytesHeld"], "an image from an instance copied data")

        # A new instance from that image reads the pattern back.
        (d,) = self.run_instances(c, image, name="clone")
        disk_d = self.describe(c, [d])[d].SystemDisk.DiskId
        qemu_io(nbd_url(acc, disk_d), "read -P 0x5a 4M 1M", "read -P 0xa5 10M 64k")

        # The other NBD clients: qemu-img convert, qemu-nbd re-exporting it, and a hypervisor
        # (qemu-system's block layer, driven through its monitor).
        out_raw = os.path.join(WORK, "clone.raw")
        p = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", nbd_url(acc, disk_d), out_raw],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out_raw, "rb") as fh:
            fh.seek(4 * MIB)
            self.assertEqual(fh.read(MIB), b"\x5a" * MIB)
        os.unlink(out_raw)
        sock = os.path.join(WORK, "qemu-nbd.sock")
        proxy = subprocess.Popen(["qemu-nbd", "-f", "raw", "-k", sock, "-r", nbd_url(acc, disk_d)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.1)
            p = subprocess.run(["qemu-io", "-r", "-f", "raw", "nbd+unix:///?socket=" + sock, "-c",
                                "read -P 0x5a 4M 1M"], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("read 1048576/1048576", p.stdout)
            self.assertNotIn("verification failed", p.stdout)
        finally:
            proxy.terminate()
            proxy.wait(30)
        hv = subprocess.run(
            ["qemu-system-x86_64", "-M", "none", "-nodefaults", "-display", "none", "-S", "-monitor", "stdio",
             "-drive", "if=none,id=d0,format=raw,file=" + nbd_url(acc, disk_d)],
            input='qemu-io d0 "read -P 0x5a 4M 1M"\nqemu-io d0 "read -P 0xa5 10M 64k"\nquit\n',
            capture_output=True, text=True, timeout=120)
        self.assertEqual(hv.returncode, 0, hv.stdout + hv.stderr)
        self.assertEqual(hv.stdout.count("read 1048576/1048576"), 1, hv.stdout)
        self.assertEqual(hv.stdout.count("read 65536/65536"), 1, hv.stdout)
        self.assertNotIn("verification failed", hv.stdout)

        # Re-install the first instance: the pattern is gone, the disk equals the image again.
        c.ResetInstance(req("ResetInstance", InstanceId=a))
        ia = self.describe(c, [a])[a]
        self.assertEqual(ia.LatestOperation, "ResetInstance")
        self.assertEqual(ia.LatestOperationState, "SUCCESS")
        self.assertEqual(ia.ImageId, PUBLIC)
        self.assertEqual(ia.SystemDisk.DiskId, disk_a)
        qemu_io(nbd_url(acc, disk_a), "read -P 0 4M 1M", "read -P 0 10M 64k")
        p = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", DISK, nbd_url(acc, disk_a)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # ... while the image made from it and its clone keep the pattern.
        qemu_io(nbd_url(acc, disk_d), "read -P 0x5a 4M 1M")

        # CBS: snapshot the clone's disk, make an image from the snapshot, rules on deletion.
        cb = cbs(acc)
        snap = cb.CreateSnapshot(cbs_req("CreateSnapshot", DiskId=disk_d, SnapshotName="clone-snap")).SnapshotId
        self.assertRegex(snap, r"^snap-[a-z0-9]{8}$")
        r = cb.DescribeSnapshots(cbs_req("DescribeSnapshots", SnapshotIds=[snap]))
        self.assertEqual(r.TotalCount, 1)
        s = r.SnapshotSet[0]
        self.assertEqual((s.SnapshotState, s.DiskId, s.DiskUsage, s.DiskSize, s.Percent),
                         ("NORMAL", disk_d, "SYSTEM_DISK", 20, 100))
        self.assertRegex(s.CreateTime, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        from_snap = c.CreateImage(req("CreateImage", SnapshotIds=[snap], ImageName="from-snap")).ImageId
        self.wait_image(c, from_snap)
        s = cb.DescribeSnapshots(cbs_req("DescribeSnapshots", SnapshotIds=[snap])).SnapshotSet[0]
        self.assertEqual([i.ImageId for i in s.Images], [from_snap])
        e = sdk_error(lambda: cb.DeleteSnapshots(cbs_req("DeleteSnapshots", SnapshotIds=[snap])))
        self.assertEqual(e.code, "UnsupportedOperation.SnapshotHasBindedImage")
        (f,) = self.run_instances(c, from_snap, name="from-snap")
        qemu_io(nbd_url(acc, self.describe(c, [f])[f].SystemDisk.DiskId), "read -P 0x5a 4M 1M")
        self.assertEqual(usage()["BytesHeld"], grown["BytesHeld"], "snapshots or images copied data")

        # Terminate everything but keep the images: the collector keeps every chunk they use.
        c.TerminateInstances(req("TerminateInstances", InstanceIds=[a, b, untouched, d, f]))
        r = c.DescribeInstances(req("DescribeInstances", InstanceIds=[a, b, untouched, d, f]))
        self.assertEqual(r.TotalCount, 0)
        S.admin("gc")
        self.assertEqual(usage()["BytesHeld"], grown["BytesHeld"], "gc freed chunks an image still uses")
        rc, out = qemu_io(nbd_url(acc, disk_a), "read 0 512", check=False)
        self.assertFalse(rc == 0 and "read 512/512" in out, "a terminated instance's disk is still served")

        # Delete the images (with their snapshots) and the user snapshot: the chunks go.
        cb.DeleteSnapshots(cbs_req("DeleteSnapshots", SnapshotIds=[snap], DeleteBindImages=True))
        c.DeleteImages(req("DeleteImages", ImageIds=[image], DeleteBindedSnap=True))
        r = cb.DescribeSnapshots(cbs_req("DescribeSnapshots"))
        self.assertEqual(r.TotalCount, 0, [x.SnapshotId for x in r.SnapshotSet])
        S.admin("gc")
        self.assertEqual(usage()["BytesHeld"], base["BytesHeld"])

    def test_batch_of_100_and_rules(self):
        acc = S.account("batch")
        c = self.cvm(acc)
        started = time.time()
        ids = self.run_instances(c, PUBLIC, count=100, name="fleet", size=50)
        elapsed = time.time() - started
        r = c.DescribeInstances(req("DescribeInstances", Filters=[("instance-name", ["fleet"])], Limit=100))
        self.assertEqual(r.TotalCount, 100)
        self.assertEqual(len({i.SystemDisk.DiskId for i in r.InstanceSet}), 100)
        # The same with a 50 GiB image (sparse, 4 MiB of data) and an image made from one of
        # its instances: the time does not depend on the disk size (printed, not asserted).
        big = os.path.join(WORK, "big.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", big, "50G"], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", big, "-c", "write -P 0x33 40G 4M"], check=True,
                       capture_output=True)
        big_img = S.publish(big, name="big-50g", os_name="Debian 12 64bit", platform="Debian")["ImageId"]
        started = time.time()
        big_ids = self.run_instances(c, big_img, count=100, name="bigfleet", size=50)
        big_elapsed = time.time() - started
        started = time.time()
        small_img = c.CreateImage(req("CreateImage", InstanceId=ids[0], ImageName="t-small")).ImageId
        self.wait_image(c, small_img)
        small_create = time.time() - started
        started = time.time()
        big_copy = c.CreateImage(req("CreateImage", InstanceId=big_ids[0], ImageName="t-big")).ImageId
        self.wait_image(c, big_copy)
        big_create = time.time() - started
        print("\n100 instances: 32 MiB image %.3f s, 50 GiB image %.3f s; CreateImage from an instance: "
              "32 MiB %.3f s, 50 GiB %.3f s" % (elapsed, big_elapsed, small_create, big_create))
        qemu_io(nbd_url(acc, self.describe(c, [big_ids[99]])[big_ids[99]].SystemDisk.DiskId), "read -P 0x33 40G 4M")
        c.TerminateInstances(req("TerminateInstances", InstanceIds=big_ids))
        c.DeleteImages(req("DeleteImages", ImageIds=[small_img, big_copy], DeleteBindedSnap=True))
        # Paging.
        r2 = c.DescribeInstances(req("DescribeInstances", Offset=95, Limit=20))
        self.assertEqual((r2.TotalCount, len(r2.InstanceSet)), (100, 5))

        e = sdk_error(lambda: self.run_instances(c, PUBLIC, count=101))
        self.assertEqual(e.code, "InvalidParameterValue")
        e = sdk_error(lambda: c.RunInstances(req("RunInstances", ImageId=PUBLIC, Placement={"Zone": "ap-beijing-1"})))
        self.assertEqual(e.code, "InvalidZone.MismatchRegion")
        e = sdk_error(lambda: c.RunInstances(req("RunInstances", ImageId="img-00000000", Placement={"Zone": ZONE})))
        self.assertEqual(e.code, "InvalidImageId.NotFound")
        e = sdk_error(lambda: self.run_instances(c, PUBLIC, size=0))
        self.assertEqual(e.code, "InvalidParameterValue")
        # DryRun checks and creates nothing.
        r = c.RunInstances(req("RunInstances", ImageId=PUBLIC, Placement={"Zone": ZONE}, DryRun=True))
        self.assertEqual(r.InstanceIdSet, [])
        # Another account's custom image cannot start instances; shared to us it can.
        owner = S.account("owner")
        oc = self.cvm(owner)
        (oi,) = self.run_instances(oc, PUBLIC, name="owner-src")
        private = oc.CreateImage(req("CreateImage", InstanceId=oi, ImageName="owner-img")).ImageId
        self.wait_image(oc, private)
        e = sdk_error(lambda: self.run_instances(c, private))
        self.assertEqual(e.code, "InvalidImageId.NotFound")
        oc.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=private,
                                          AccountIds=[acc["AccountId"]], Permission="SHARE"))
        (si,) = self.run_instances(c, private, name="from-shared")
        # The recipient's image made from that instance is its own custom image.
        mine = c.CreateImage(req("CreateImage", InstanceId=si, ImageName="mine")).ImageId
        self.assertEqual(self.wait_image(c, mine).ImageType, "PRIVATE_IMAGE")
        # The owner may delete the source image (after unsharing) while instances use it.
        oc.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=private,
                                          AccountIds=[acc["AccountId"]], Permission="CANCEL"))
        oc.DeleteImages(req("DeleteImages", ImageIds=[private]))
        S.admin("gc")
        p = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", DISK,
                            nbd_url(acc, self.describe(c, [si])[si].SystemDisk.DiskId)], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, "an instance lost data when its image was deleted: " + p.stdout + p.stderr)
        # Instance ids and disks.
        e = sdk_error(lambda: c.TerminateInstances(req("TerminateInstances", InstanceIds=["ins-00000000"])))
        self.assertEqual(e.code, "InvalidInstanceId.NotFound")
        e = sdk_error(lambda: c.TerminateInstances(req("TerminateInstances", InstanceIds=["bogus"])))
        self.assertEqual(e.code, "InvalidInstanceId.Malformed")
        sys_disk = self.describe(c, [si])[si].SystemDisk.DiskId
        e = sdk_error(lambda: c.CreateImage(req("CreateImage", InstanceId=si, ImageName="x",
                                                DataDiskIds=[sys_disk])))
        self.assertEqual(e.code, "InvalidParameterValue")
        e = sdk_error(lambda: c.CreateImage(req("CreateImage", ImageName="x")))
        self.assertEqual(e.code, "InvalidParameter.SpecifyOneParameter")
        # Custom image quota (4) applies to images made from instances.
        made = [mine]
        while len(made) < 4:
            made.append(c.CreateImage(req("CreateImage", InstanceId=si, ImageName="q%d" % len(made))).ImageId)
        e = sdk_error(lambda: c.CreateImage(req("CreateImage", InstanceId=si, ImageName="q-over")))
        self.assertEqual(e.code, "ImageQuotaLimitExceeded")
        # Data disks: empty and from a snapshot.
        snap = cbs(acc).CreateSnapshot(cbs_req("CreateSnapshot", DiskId=sys_disk)).SnapshotId
        (dd,) = self.run_instances(c, PUBLIC, name="with-data",
                                   DataDisks=[{"DiskSize": 10}, {"DiskSize": 30, "SnapshotId": snap}])
        disks = self.describe(c, [dd])[dd].DataDisks
        self.assertEqual([x.DiskSize for x in disks], [10, 30])
        qemu_io(nbd_url(acc, disks[0].DiskId), "read -P 0 0 1M")
        p = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", DISK, nbd_url(acc, disks[1].DiskId)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        c.TerminateInstances(req("TerminateInstances", InstanceIds=ids))

    def test_tccli(self):
        acc = S.account("tccli")
        p = h.tccli(S, acc, "cvm", "RunInstances", "--ImageId", PUBLIC, "--Placement", json.dumps({"Zone": ZONE}),
                    "--InstanceCount", "2", "--InstanceName", "cli")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ids = json.loads(p.stdout)["InstanceIdSet"]
        self.assertEqual(len(ids), 2)
        p = h.tccli(S, acc, "cvm", "DescribeInstances", "--InstanceIds", json.dumps(ids))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["TotalCount"], 2)
        disk = out["InstanceSet"][0]["SystemDisk"]["DiskId"]
        p = h.tccli(S, acc, "cbs", "CreateSnapshot", "--DiskId", disk, "--SnapshotName", "cli-snap")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        snap = json.loads(p.stdout)["SnapshotId"]
        p = h.tccli(S, acc, "cbs", "DescribeSnapshots", "--SnapshotIds", json.dumps([snap]))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["SnapshotSet"][0]["DiskId"], disk)
        p = h.tccli(S, acc, "cvm", "ResetInstance", "--InstanceId", ids[0])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = h.tccli(S, acc, "cbs", "DeleteSnapshots", "--SnapshotIds", json.dumps([snap]))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = h.tccli(S, acc, "cvm", "TerminateInstances", "--InstanceIds", json.dumps(ids))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = h.tccli(S, acc, "cvm", "TerminateInstances", "--InstanceIds", json.dumps(ids))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidInstanceId.NotFound", p.stdout + p.stderr)

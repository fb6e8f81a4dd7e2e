"""Marketplace and pricing with Tencent's own SDK and tccli against a real `ikon serve`: a
provider submits a custom image with a price (Ikon's SubmitMarketImage through the SDK's
generic client), the platform administrator approves or rejects it (`ikon admin market`),
everyone sees the approved image as MARKET_IMAGE with provider and price, its price flows
into InquiryPriceRunInstances (also for a custom image made from it), public Windows images
cost a licence fee only in North America, resale is refused, withdrawal removes it, and
`ikon admin billing report` prints the metered instance-hours and storage. The hygiene scan:
a submission whose image holds what the policy blocks (a maker's authorized_keys, cloud
credentials) is refused with the findings in the error; warnings reach the reviewer
(`ikon admin market list`) and the provider; the owner sees the findings through Ikon's
DescribeImageScan and `ikon image scan`, computed by a task after the image is NORMAL and
reused by its copies; nobody else sees them."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import harness as h
from harness import req, sdk_error

S = None
WORK = None
DISK = None
GUESTS = {}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZONE = "ap-guangzhou-3"
CONFIG = """[limits]
daily_operations = 50
[pricing]
windows_license_per_hour = 0.046
storage_per_gib_month = 0.05
"""


def setUpModule():
    global S, WORK, DISK
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-market-")
    DISK = h.make_disk(WORK, size_mib=16, data_mib=2)
    make_guests()
    S = h.Server(CONFIG, "market")


def run(cmd, **kw):
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin", TMPDIR=WORK)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    return p


def plant(base, name, files):
    """A copy of `base` with `files` ({guest path: content}) written into its root ext4
    (at 1 MiB, as make-linux.sh lays it out) by debugfs, parents created."""
    out = os.path.join(WORK, name + ".raw")
    run(["cp", "--sparse=always", base, out])
    cmds, dirs = [], set()
    for i, (path, content) in enumerate(sorted(files.items())):
        parts = path.strip("/").split("/")[:-1]
        for k in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:k])
            if d not in dirs:
                dirs.add(d)
                cmds.append("mkdir %s" % d)
        local = os.path.join(WORK, "%s-%d" % (name, i))
        with open(local, "w") as f:
            f.write(content)
        cmds += ["rm %s" % path, "write %s %s" % (local, path)]
    script = os.path.join(WORK, name + ".debugfs")
    with open(script, "w") as f:
        f.write("\n".join(cmds) + "\n")
    run(["debugfs", "-w", "-f", script, out + "?offset=1048576"])
    return out


def make_guests():
    base = os.path.join(WORK, "guest.raw")
    run(["bash", os.path.join(ROOT, "scripts/fixtures/make-linux.sh"), base, "debian12"])
    GUESTS["clean"] = base
    GUESTS["leaky"] = plant(base, "leaky", {
        "/root/.ssh/authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMaker maker@laptop\n",
        "/home/deploy/.aws/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\n",
    })
    GUESTS["warned"] = plant(base, "warned", {"/root/.bash_history": "ls\nmysql -u root -p\n"})


def tearDownModule():
    try:
        if S:
            S.stop()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


def admin_json(*args):
    return json.loads(S.admin(*(list(args) + ["--output", "json"])).stdout)


def scan_of(c, image, wait=True):
    for _ in range(600):
        r = c.call_json("DescribeImageScan", {"ImageId": image})["Response"]
        if not wait or r["State"] not in ("PENDING", "NONE"):
            return r
        time.sleep(0.1)
    raise AssertionError("the scan of %s did not finish: %s" % (image, r))


def r_findings(image, c):
    return scan_of(c, image)["Findings"]


class Market(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def price(self, c, image, zone=ZONE, count=1):
        r = c.InquiryPriceRunInstances(req("InquiryPriceRunInstances", ImageId=image, Placement={"Zone": zone},
                                           InstanceCount=count))
        self.assertEqual(r.Price.InstancePrice.ChargeUnit, "HOUR")
        return r.Price.InstancePrice.UnitPrice

    def market_ids(self, c):
        r = c.DescribeImages(req("DescribeImages", Filters=[("image-type", ["MARKET_IMAGE"])]))
        return {i.ImageId: i for i in r.ImageSet}

    def test_scan_refuses_blocking_findings_and_reports_warnings(self):
        provider = S.account("scanprov")
        other = S.account("scanother")
        pc = h.common(S, provider)
        leaky = S.publish(GUESTS["leaky"], name="leaky", account=provider)["ImageId"]
        warned = S.publish(GUESTS["warned"], name="warned", account=provider)["ImageId"]
        clean = S.publish(GUESTS["clean"], name="clean", account=provider)["ImageId"]

        # The facts come from a task after the image is NORMAL, without any submission.
        r = scan_of(pc, clean)
        self.assertEqual(r["State"], "DONE", r)
        self.assertEqual(r["Scanned"], ["linux"])
        self.assertEqual([f for f in r["Findings"] if f["Severity"] != "info"], [], r)

        # Blocking findings refuse the listing, each named in the error; nothing is listed.
        e = sdk_error(lambda: pc.call_json("SubmitMarketImage", {"ImageId": leaky, "PricePerHour": 0.1}))
        self.assertEqual(e.code, "FailedOperation.ImageScanBlocked", e.message)
        for part in ("authorized-keys", "/root/.ssh/authorized_keys", "cloud-credentials",
                     "/home/deploy/.aws/credentials"):
            self.assertIn(part, e.message)
        self.assertNotIn("AKIAEXAMPLE", e.message)
        self.assertNotIn("AAAAC3Nza", e.message)
        mine = pc.call_json("DescribeMarketListings", {})["Response"]["ListingSet"]
        self.assertEqual([x for x in mine if x["SourceImageId"] == leaky], [])

        # Warnings: accepted, shown to the provider and to the reviewer.
        out = pc.call_json("SubmitMarketImage", {"ImageId": warned, "PricePerHour": 0.1})["Response"]
        self.assertEqual(out["State"], "PENDING")
        mine = {x["ListingId"]: x for x in pc.call_json("DescribeMarketListings", {})["Response"]["ListingSet"]}
        # (The Debian fixture has no cloud-init: an info finding rides along.)
        got = [(f["Id"], f["Severity"], f["Path"]) for f in mine[out["ListingId"]]["Findings"]]
        self.assertEqual(got, [("shell-history", "warn", "/root/.bash_history"),
                               ("no-first-boot-agent", "info", "/etc/cloud/cloud.cfg")])
        review = {x["ListingId"]: x for x in admin_json("market", "list", "--state", "PENDING")}
        self.assertEqual([(f["Id"], f["Path"]) for f in review[out["ListingId"]]["Findings"]],
                         [("shell-history", "/root/.bash_history"), ("no-first-boot-agent", "/etc/cloud/cloud.cfg")])
        text = S.admin("market", "list", "--state", "PENDING").stdout
        self.assertIn("warn  shell-history /root/.bash_history", text)
        S.admin("market", "reject", out["ListingId"], "--reason", "empty the shell history")

        # The owner sees the findings (Ikon's action and `ikon image scan`); the secret never.
        r = scan_of(pc, leaky)
        self.assertEqual(r["State"], "DONE")
        got = {(f["Id"], f["Severity"], f["Path"]) for f in r["Findings"]}
        self.assertEqual(got, {("authorized-keys", "block", "/root/.ssh/authorized_keys"),
                               ("cloud-credentials", "block", "/home/deploy/.aws/credentials"),
                               ("no-first-boot-agent", "info", "/etc/cloud/cloud.cfg")})
        env = dict(os.environ, IKON_SECRET_ID=provider["SecretId"], IKON_SECRET_KEY=provider["SecretKey"])
        p = subprocess.run([h.IKON, "image", "scan", leaky, "--endpoint", S.url, "--wait"],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("block  authorized-keys", p.stdout)
        p = subprocess.run([h.IKON, "image", "scan", clean, "--endpoint", S.url, "--output", "json"],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # Sharing a blocked image is allowed; the recipient uses it but does not see findings;
        # anyone else does not see the image at all.
        sc = h.sdk(S, provider)
        sc.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=leaky,
                                          AccountIds=[other["AccountId"]], Permission="SHARE"))
        oc = h.common(S, other)
        e = sdk_error(lambda: oc.call_json("DescribeImageScan", {"ImageId": leaky}))
        self.assertEqual(e.code, "UnauthorizedOperation.ImageNotBelongToAccount")
        stranger = S.account("scanstranger")
        e = sdk_error(lambda: h.common(S, stranger).call_json("DescribeImageScan", {"ImageId": warned}))
        self.assertEqual(e.code, "InvalidImageId.NotFound")

        # A copy in another region reuses the facts of the same content.
        r = sc.SyncImages(req("SyncImages", ImageIds=[leaky], DestinationRegions=["ap-shanghai"],
                              ImageSetRequired=True))
        copy = r.ImageSet[0].ImageId
        sh = h.common(S, provider, region="ap-shanghai")
        for _ in range(600):
            st = h.sdk(S, provider, region="ap-shanghai").DescribeImages(
                req("DescribeImages", ImageIds=[copy])).ImageSet[0].ImageState
            if st == "NORMAL":
                break
            time.sleep(0.1)
        rc = scan_of(sh, copy)
        self.assertEqual(rc["State"], "DONE", rc)
        self.assertEqual(rc["Findings"], r_findings(leaky, pc))
        self.assertEqual(rc["UpdatedTime"], scan_of(pc, leaky)["UpdatedTime"])

    def test_listing_price_billing(self):
        provider = S.account("provider")
        buyer = S.account("buyer")
        src = S.publish(DISK, name="lamp-stack", account=provider, os_name="Debian 12 64bit",
                        platform="Debian")["ImageId"]
        pc = h.common(S, provider)
        out = pc.call_json("SubmitMarketImage", {"ImageId": src, "PricePerHour": 0.25})["Response"]
        listing = out["ListingId"]
        self.assertEqual(out["State"], "PENDING")
        bc = h.sdk(S, buyer)
        self.assertEqual(self.market_ids(bc), {}, "a pending listing is visible")
        # Another account cannot sell the provider's image; prices are bounded.
        e = sdk_error(lambda: h.common(S, buyer).call_json("SubmitMarketImage", {"ImageId": src, "PricePerHour": 1}))
        self.assertEqual(e.code, "InvalidImageId.NotFound")
        e = sdk_error(lambda: pc.call_json("SubmitMarketImage", {"ImageId": src, "PricePerHour": -1}))
        self.assertEqual(e.code, "InvalidParameterValue")

        approved = admin_json("market", "approve", listing)
        market = approved["ImageId"]
        self.assertEqual(approved["State"], "APPROVED")
        seen = self.market_ids(bc)
        self.assertIn(market, seen)
        img = seen[market]
        self.assertEqual(img.ImageType, "MARKET_IMAGE")
        self.assertEqual(img.ImageCreator, provider["AccountId"])
        tags = {t.Key: t.Value for t in img.Tags}
        self.assertEqual(tags.get("ikon:price-per-hour"), "0.25")
        self.assertEqual(tags.get("ikon:provider"), provider["AccountId"])

        # The price flows into InquiryPriceRunInstances, per instance and for a batch.
        self.assertAlmostEqual(self.price(bc, market), 0.25)
        self.assertAlmostEqual(self.price(bc, market, count=4), 1.0)
        # A custom image made from an instance of it inherits the fee; it cannot be resold.
        (ins,) = bc.RunInstances(req("RunInstances", ImageId=market, Placement={"Zone": ZONE})).InstanceIdSet
        mine = bc.CreateImage(req("CreateImage", InstanceId=ins, ImageName="my-lamp")).ImageId
        for _ in range(300):
            if bc.DescribeImages(req("DescribeImages", ImageIds=[mine])).ImageSet[0].ImageState == "NORMAL":
                break
            time.sleep(0.1)
        self.assertAlmostEqual(self.price(bc, mine), 0.25)
        e = sdk_error(lambda: h.common(S, buyer).call_json("SubmitMarketImage",
                                                          {"ImageId": mine, "PricePerHour": 0.1}))
        self.assertEqual(e.code, "InvalidParameterValue")
        self.assertIn("resold", e.message)
        # Nor exported: it carries the provider's software (checked before the bucket).
        e = sdk_error(lambda: bc.ExportImages(req("ExportImages", BucketName="any-bucket", ImageIds=[mine])))
        self.assertEqual(e.code, "UnsupportedOperation.MarketImageExportUnsupported", e.message)
        # tccli asks the same price.
        p = h.tccli(S, buyer, "cvm", "InquiryPriceRunInstances", "--ImageId", market,
                    "--Placement", json.dumps({"Zone": ZONE}), "--InstanceCount", "2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertAlmostEqual(json.loads(p.stdout)["Price"]["InstancePrice"]["UnitPrice"], 0.5)

        # Public images: free, except Windows ones in North America (licence fee).
        linux = S.publish(DISK, name="pub-linux-m", os_name="Debian 12 64bit", platform="Debian")["ImageId"]
        win = S.publish(DISK, name="pub-win-m", os_name="Windows Server 2012 R2 64bit", platform="Windows")["ImageId"]
        self.assertEqual(self.price(bc, linux), 0)
        self.assertEqual(self.price(bc, win), 0)
        na = h.sdk(S, buyer, region="na-siliconvalley")
        self.assertAlmostEqual(self.price(na, win, zone="na-siliconvalley-1"), 0.046)
        self.assertEqual(self.price(na, linux, zone="na-siliconvalley-1"), 0)

        # Rejection with a reason, visible to the provider.
        other = S.publish(DISK, name="other-stack", account=provider)["ImageId"]
        l2 = pc.call_json("SubmitMarketImage", {"ImageId": other, "PricePerHour": "1.5"})["Response"]["ListingId"]
        S.admin("market", "reject", l2, "--reason", "no licence file")
        mine_l = {x["ListingId"]: x for x in pc.call_json("DescribeMarketListings", {})["Response"]["ListingSet"]}
        self.assertEqual((mine_l[l2]["State"], mine_l[l2]["Reason"]), ("REJECTED", "no licence file"))
        self.assertEqual(mine_l[listing]["State"], "APPROVED")
        p = S.admin("market", "approve", l2, check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)

        # Withdrawal: gone from DescribeImages; running instances keep going.
        pc.call_json("WithdrawMarketImage", {"ListingId": listing})
        self.assertNotIn(market, self.market_ids(bc))
        r = bc.DescribeInstances(req("DescribeInstances", InstanceIds=[ins]))
        self.assertEqual(r.InstanceSet[0].InstanceState, "RUNNING")
        self.assertAlmostEqual(self.price(bc, mine), 0.25, msg="the inherited fee survives withdrawal")

        # Billing: instance-hours of the marketplace image at its price; storage of unique chunks
        # (the provider also has an image of its own data; everything else shares chunks with
        # public or marketplace images).
        S.publish(h.make_disk(WORK, name="uniq.qcow2", size_mib=8, data_mib=3), name="own-data", account=provider)
        time.sleep(1.5)
        S.admin("billing", "sample")
        bc.TerminateInstances(req("TerminateInstances", InstanceIds=[ins]))
        time.sleep(1.2)
        month = time.strftime("%Y-%m", time.gmtime())
        rep = admin_json("billing", "report", "--account", buyer["AccountId"], "--month", month)
        lines = {l["ImageId"]: l for l in rep["Instances"]}
        self.assertIn(market, lines, rep)
        self.assertEqual(lines[market]["PricePerHour"], 0.25)
        self.assertGreater(lines[market]["InstanceHours"], 0)
        self.assertLess(lines[market]["InstanceHours"], 1)
        self.assertEqual(rep["StorageGiBHours"], 0, "the buyer's image holds no chunk of its own")
        rep = admin_json("billing", "report", "--account", provider["AccountId"], "--month", month)
        self.assertGreater(rep["StorageGiBHours"], 0, rep)
        self.assertEqual(rep["Currency"], "USD")
        p = S.admin("billing", "report", "--account", buyer["AccountId"], "--month", "2026-13", check=False)
        self.assertEqual(p.returncode, 1)

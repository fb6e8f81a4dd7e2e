"""Finer points of the reference contract (tencent-cvm.md §1–§5) that ordinary client use
does not reach: signature scope and signed-header variants, the SDK's unsigned-payload
and STS-token modes, request limits, malformed input, name uniqueness, image families."""

import hashlib
import json
import secrets
import shutil
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import harness as h
from harness import req, sdk_error
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign
from tencentcloud.cvm.v20170312 import cvm_client

S = None
WORK = None
DISK = None


def setUpModule():
    global S, WORK, DISK
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-contract-")
    DISK = h.make_disk(WORK)
    S = h.Server("", "contract")


def tearDownModule():
    try:
        if S:
            S.stop()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


def send(method, headers, body=None, query=""):
    r = urllib.request.Request(S.url + "/" + ("?" + query if query else ""), data=body, method=method,
                               headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def signed(acc, action, body, ts=None, scope_date=None, signed_headers=("content-type", "host"), extra=None,
           payload_hash=None):
    """Hand-built TC3 headers with control over the scope date and the signed-header list."""
    ts = int(time.time() if ts is None else ts)
    hdr = {"Content-Type": "application/json", "Host": S.addr, "X-TC-Action": action, "X-TC-Version": h.VERSION,
           "X-TC-Timestamp": str(ts), "X-TC-Region": "ap-guangzhou"}
    hdr.update(extra or {})
    low = {k.lower(): v for k, v in hdr.items()}
    canon_headers = "".join("%s:%s\n" % (k, low[k].strip()) for k in signed_headers)
    canonical = "\n".join(["POST", "/", "", canon_headers, ";".join(signed_headers),
                           payload_hash or hashlib.sha256(body).hexdigest()])
    date = scope_date or time.strftime("%Y-%m-%d", time.gmtime(ts))
    scope = "%s/cvm/tc3_request" % date
    s2s = "TC3-HMAC-SHA256\n%d\n%s\n%s" % (ts, scope, hashlib.sha256(canonical.encode()).hexdigest())
    sig = Sign.sign_tc3(acc["SecretKey"], date, "cvm", s2s)
    hdr["Authorization"] = "TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        acc["SecretId"], scope, ";".join(signed_headers), sig)
    return hdr


class Contract(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def envelope(self, status, headers, body):
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        return json.loads(body)

    def test_scope_date_must_be_the_timestamps_utc_date(self):
        a = S.account("scope")
        body = b"{}"
        yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        r = self.envelope(*send("POST", signed(a, "DescribeRegions", body, scope_date=yesterday), body))
        self.assertTrue(h.error_of(self, r).startswith("AuthFailure"), r)

    def test_extra_signed_headers_are_honoured(self):
        a = S.account("sighdr")
        body = b"{}"
        hdr = signed(a, "DescribeRegions", body, signed_headers=("content-type", "host", "x-tc-action"))
        r = self.envelope(*send("POST", hdr, body))
        self.assertEqual(h.response_of(self, r, "DescribeRegions")["TotalCount"], 6)
        # ...and are then covered: another action under the same signature fails.
        hdr["X-TC-Action"] = "DescribeZones"
        self.assertEqual(h.error_of(self, self.envelope(*send("POST", hdr, body))), "AuthFailure.SignatureFailure")

    def test_sdk_unsigned_payload_mode(self):
        a = S.account("unsigned")
        cp = ClientProfile(httpProfile=HttpProfile(endpoint=S.addr, protocol="http"))
        cp.unsignedPayload = True
        c = cvm_client.CvmClient(credential.Credential(a["SecretId"], a["SecretKey"]), "ap-guangzhou", cp)
        self.assertEqual(c.DescribeRegions(req("DescribeRegions")).TotalCount, 6)
        # Without the header the payload is signed: a body hashed as UNSIGNED-PAYLOAD fails.
        hdr = signed(a, "DescribeRegions", b"{}", payload_hash=hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest())
        self.assertEqual(h.error_of(self, self.envelope(*send("POST", hdr, b"{}"))), "AuthFailure.SignatureFailure")

    def test_sts_token_that_is_not_valid(self):
        a = S.account("token")
        c = cvm_client.CvmClient(credential.Credential(a["SecretId"], a["SecretKey"], "not-a-token"), "ap-guangzhou",
                                 ClientProfile(httpProfile=HttpProfile(endpoint=S.addr, protocol="http")))
        self.assertEqual(sdk_error(lambda: c.DescribeRegions(req("DescribeRegions"))).code, "AuthFailure.TokenFailure")

    def test_request_ids_are_uuid4(self):
        a = S.account("uuid")
        ids = {h.sdk(S, a).DescribeRegions(req("DescribeRegions")).RequestId for _ in range(3)}
        self.assertEqual(len(ids), 3)
        for i in ids:
            self.assertRegex(i, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

    def test_filter_limits(self):
        a = S.account("flimits")
        c = h.sdk(S, a)
        e = sdk_error(lambda: c.DescribeImages(req("DescribeImages", Filters=[("image-name", ["x%d" % i])
                                                                              for i in range(11)])))
        self.assertEqual(e.code, "InvalidFilterValue.LimitExceeded")
        e = sdk_error(lambda: c.DescribeImages(req("DescribeImages",
                                                   Filters=[("image-name", ["x%d" % i for i in range(6)])])))
        self.assertEqual(e.code, "InvalidFilterValue.LimitExceeded")

    def test_size_limits(self):
        a = S.account("sizes")
        c = h.sdk(S, a)
        img = S.publish(DISK, account=a)["ImageId"]
        e = sdk_error(lambda: c.DescribeImages(req("DescribeImages", ImageIds=["img-%08d" % i for i in range(101)])))
        self.assertEqual(e.code, "InvalidParameterValue.LimitExceeded")
        e = sdk_error(lambda: c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img,
                                                         ImageDescription="d" * 257)))
        self.assertIn(e.code, ("InvalidParameterValue.TooLong", "InvalidParameterValue.TooLarge"))
        c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img, ImageDescription="d" * 256,
                                   ImageName="n" * 60))
        i = c.DescribeImages(req("DescribeImages", ImageIds=[img])).ImageSet[0]
        self.assertEqual((len(i.ImageName), len(i.ImageDescription)), (60, 256))
        e = sdk_error(lambda: c.ModifyImageSharePermission(req("ModifyImageSharePermission", ImageId=img,
                                                               AccountIds=[], Permission="SHARE")))
        self.assertIn(e.code, ("MissingParameter", "InvalidParameterValue"))

    def test_malformed_requests(self):
        a = S.account("malformed")
        for body in (b"{not json", b"[1, 2]", b'{"Limit": "ten"}', b'{"ImageIds": "img-12345678"}'):
            with self.subTest(body=body):
                r = self.envelope(*send("POST", signed(a, "DescribeImages", body), body))
                self.assertTrue(h.error_of(self, r).startswith("InvalidParameter"), r)
        body = json.dumps({"ImageIds": ["img-%08d" % i for i in range(120000)]}).encode()
        status, headers, raw = send("POST", signed(a, "DescribeImages", body), body)
        self.assertEqual(status, 200, raw[:300])
        code = h.error_of(self, json.loads(raw))
        self.assertIn(code, ("RequestSizeLimitExceeded", "InvalidParameterValue.LimitExceeded"), code)

    def test_unknown_region(self):
        a = S.account("region")
        e = sdk_error(lambda: h.sdk(S, a, region="mars-north-1").DescribeImages(req("DescribeImages")))
        self.assertIn(e.code, ("InvalidRegion.NotFound", "UnsupportedRegion", "InvalidParameterValue.InvalidRegion"))

    def test_other_http_methods(self):
        a = S.account("method")
        hdr = signed(a, "DescribeRegions", b"{}")
        status, headers, raw = send("PUT", hdr, b"{}")
        if status == 200:
            self.assertEqual(h.error_of(self, json.loads(raw)), "UnsupportedProtocol")
        else:
            self.assertIn(status, (405,), raw)

    def test_names_are_unique_per_account(self):
        a = S.account("names")
        c = h.sdk(S, a)
        one = S.publish(DISK, name="same-name", account=a)["ImageId"]
        two = S.publish(DISK, name="other-name", account=a)["ImageId"]
        e = sdk_error(lambda: c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=two, ImageName="same-name")))
        self.assertEqual(e.code, "InvalidImageName.Duplicate")
        p = S.publish(DISK, name="same-name", account=a, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("InvalidImageName.Duplicate", p.stderr)
        # Another account may use the name.
        S.publish(DISK, name="same-name", account=S.account("names-b"))
        self.assertEqual(c.DescribeImages(req("DescribeImages", ImageIds=[one])).ImageSet[0].ImageName, "same-name")

    def test_family_gives_newest_non_deprecated(self):
        a = S.account("famdep")
        c = h.sdk(S, a)
        fam = "fd%s" % secrets.token_hex(3)
        old = S.publish(DISK, name="fam-old", account=a)["ImageId"]
        # CreatedTime has one-second resolution: make "newest" unambiguous (at most 1 s).
        created = c.DescribeImages(req("DescribeImages", ImageIds=[old])).ImageSet[0].CreatedTime
        while time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) <= created:
            time.sleep(0.05)
        new = S.publish(DISK, name="fam-new", account=a)["ImageId"]
        for img in (old, new):
            c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=img, ImageFamily=fam))
        self.assertEqual(c.DescribeImageFromFamily(req("DescribeImageFromFamily", ImageFamily=fam)).Image.ImageId, new)
        c.ModifyImageAttribute(req("ModifyImageAttribute", ImageId=new, ImageDeprecated=True))
        self.assertTrue(c.DescribeImages(req("DescribeImages", ImageIds=[new])).ImageSet[0].ImageDeprecated)
        self.assertEqual(c.DescribeImageFromFamily(req("DescribeImageFromFamily", ImageFamily=fam)).Image.ImageId, old)


if __name__ == "__main__":
    unittest.main()

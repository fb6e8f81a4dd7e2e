"""The wire contract below the clients, with requests signed by hand around the SDK's own
TC3 code (tencentcloud.common.sign.Sign.sign_tc3): timestamps the SDK would never send,
the GET form exactly as the SDK flattens it (`Filters.0.Values.0=…`, dict order, not
sorted), envelopes (HTTP 200 and a bare `application/json` even for errors), and the
Prometheus counters of requests by action and code on `GET /metrics`."""

import json
import secrets
import shutil
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import harness as h
from harness import req, sdk_error

S = None
WORK = None
DISK = None
PUBLIC = None


def setUpModule():
    global S, WORK, DISK, PUBLIC
    h.require_tools()
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-wire-")
    DISK = h.make_disk(WORK)
    S = h.Server("", "wire")  # an empty config file: all defaults
    PUBLIC = S.publish(DISK, name="wire-public", os_name="CentOS 8 64bit", platform="CentOS")["ImageId"]


def tearDownModule():
    try:
        if S:
            S.stop()
            assert S.proc.poll() is not None
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


class Wire(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def call(self, acc, action, params=None, **kw):
        status, headers, body = h.raw_call(S, acc, action, params, **kw)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], "application/json")
        return body

    def code(self, acc, action, params=None, **kw):
        return h.error_of(self, self.call(acc, action, params, **kw))

    def test_hand_signed_post_succeeds(self):
        a = S.account("w-ok")
        r = h.response_of(self, self.call(a, "DescribeRegions"), "DescribeRegions")
        self.assertEqual(r["TotalCount"], 6)
        # Other clients send `application/json; charset=utf-8`: accepted and signed as sent.
        r = self.call(a, "DescribeImages", {"ImageIds": [PUBLIC]}, content_type="application/json; charset=utf-8")
        self.assertEqual(h.response_of(self, r, "DescribeImages")["TotalCount"], 1)

    def test_expired_and_future_timestamps(self):
        a = S.account("w-time")
        now = time.time()
        for skew in (-600, -301, +600):
            with self.subTest(skew=skew):
                self.assertEqual(self.code(a, "DescribeRegions", ts=now + skew), "AuthFailure.SignatureExpire")
        # Within five minutes: fine.
        for skew in (-240, +240):
            with self.subTest(skew=skew):
                h.response_of(self, self.call(a, "DescribeRegions", ts=now + skew), "DescribeRegions")

    def test_signature_must_cover_body_and_key(self):
        a = S.account("w-sig")
        body = json.dumps({"ImageIds": [PUBLIC]}).encode()
        hdr = h.sign_headers(a["SecretId"], a["SecretKey"], S.addr, "DescribeImages", body=body)
        tampered = json.dumps({"ImageIds": [PUBLIC], "Limit": 1}).encode()
        r = urllib.request.Request(S.url + "/", data=tampered, method="POST", headers=hdr)
        with urllib.request.urlopen(r, timeout=30) as resp:
            self.assertEqual(resp.status, 200)
            self.assertEqual(h.error_of(self, json.loads(resp.read())), "AuthFailure.SignatureFailure")
        wrong = dict(a, SecretKey=a["SecretKey"][::-1])
        self.assertEqual(self.code(wrong, "DescribeRegions"), "AuthFailure.SignatureFailure")
        ghost = {"SecretId": "AKID" + secrets.token_hex(16), "SecretKey": "x"}
        self.assertEqual(self.code(ghost, "DescribeRegions"), "AuthFailure.SecretIdNotFound")

    def test_missing_or_bad_authorization(self):
        a = S.account("w-auth")
        hdr = h.sign_headers(a["SecretId"], a["SecretKey"], S.addr, "DescribeRegions", body=b"{}")
        for variant in ("missing", "algorithm"):
            with self.subTest(variant=variant):
                hh = dict(hdr)
                if variant == "missing":
                    del hh["Authorization"]
                else:
                    hh["Authorization"] = hh["Authorization"].replace("TC3-HMAC-SHA256", "HMAC-MD5", 1)
                r = urllib.request.Request(S.url + "/", data=b"{}", method="POST", headers=hh)
                with urllib.request.urlopen(r, timeout=30) as resp:
                    self.assertEqual(resp.status, 200)
                    code = h.error_of(self, json.loads(resp.read()))
                    self.assertTrue(code.startswith("AuthFailure") or code == "MissingParameter", code)

    def test_unknown_action_and_version(self):
        a = S.account("w-action")
        self.assertEqual(self.code(a, "DescribeUnicorns"), "InvalidAction")
        self.assertEqual(self.code(a, "DescribeRegions", headers={"X-TC-Version": "2099-01-01"}), "NoSuchVersion")

    def test_get_form_as_the_sdk_sends_it(self):
        a = S.account("w-get")
        mine = S.publish(DISK, name="wire-mine", account=a, os_name="Debian 12 64bit", platform="Debian")["ImageId"]
        # Exactly the SDK's flattening: 0-based, nested with dots, dict order (not sorted).
        q = "Filters.0.Name=image-id&Filters.0.Values.0=%s&Filters.0.Values.1=%s&Offset=0&Limit=10" % (mine, PUBLIC)
        r = h.response_of(self, self.call(a, "DescribeImages", method="GET", query=q), "DescribeImages")
        self.assertEqual(sorted(i["ImageId"] for i in r["ImageSet"]), sorted([mine, PUBLIC]))
        self.assertEqual(r["TotalCount"], 2)
        q = "Limit=1&Offset=1&Filters.0.Values.0=%s&Filters.0.Values.1=%s&Filters.0.Name=image-id" % (PUBLIC, mine)
        r = h.response_of(self, self.call(a, "DescribeImages", method="GET", query=q), "DescribeImages")
        self.assertEqual((r["TotalCount"], len(r["ImageSet"])), (2, 1))
        q = "ImageIds.0=%s" % mine
        r = h.response_of(self, self.call(a, "DescribeImages", method="GET", query=q), "DescribeImages")
        self.assertEqual([i["ImageId"] for i in r["ImageSet"]], [mine])
        # Percent-encoding, as urlencode produces it for a value with a space.
        q = urllib.parse.urlencode([("Filters.0.Name", "image-name"), ("Filters.0.Values.0", "wire mine")])
        r = h.response_of(self, self.call(a, "DescribeImages", method="GET", query=q), "DescribeImages")
        self.assertEqual(r["TotalCount"], 0)
        q = urllib.parse.urlencode([("ImageId", mine), ("ImageName", "wire renamed")])
        h.response_of(self, self.call(a, "ModifyImageAttribute", method="GET", query=q), "ModifyImageAttribute")
        r = self.call(a, "DescribeImages", {"ImageIds": [mine]})
        self.assertEqual(r["Response"]["ImageSet"][0]["ImageName"], "wire renamed")
        # Python booleans arrive capitalised.
        q = "ImageIds.0=%s&DryRun=True" % mine
        h.response_of(self, self.call(a, "DeleteImages", method="GET", query=q), "DeleteImages")
        self.assertEqual(self.call(a, "DescribeImages", {"ImageIds": [mine]})["Response"]["TotalCount"], 1)
        # Errors through GET too.
        self.assertEqual(self.code(a, "DescribeImages", method="GET", query="ImageIds.0=bogus"),
                         "InvalidImageId.Malformed")
        self.assertEqual(self.code(a, "DescribeImages", method="GET", query="Filters.0.Name=nope&Filters.0.Values.0=x"),
                         "InvalidFilter")
        # A signed query that is reordered in transit no longer matches its signature.
        signed = "Offset=0&Limit=10"
        hdr = h.sign_headers(a["SecretId"], a["SecretKey"], S.addr, "DescribeImages", method="GET", query=signed)
        r = urllib.request.Request(S.url + "/?Limit=10&Offset=0", method="GET", headers=hdr)
        with urllib.request.urlopen(r, timeout=30) as resp:
            self.assertEqual(h.error_of(self, json.loads(resp.read())), "AuthFailure.SignatureFailure")

    def test_errors_are_http_200_bare_json(self):
        a = S.account("w-env")
        for action, params in (("DescribeImages", {"ImageIds": ["bogus"]}),
                               ("DeleteImages", {"ImageIds": ["img-zzzzzzzz"]}),
                               ("ModifyImageAttribute", {})):
            with self.subTest(action=action):
                status, headers, body = h.raw_call(S, a, action, params)
                self.assertEqual(status, 200)
                self.assertEqual(headers["Content-Type"], "application/json")
                h.error_of(self, body)

    def test_default_quota(self):
        a = S.account("w-quota")
        r = h.response_of(self, self.call(a, "DescribeImageQuota"), "DescribeImageQuota")
        self.assertEqual(r["ImageNumQuota"], 10)
        for i in range(10):
            S.publish(DISK, name="q-%d" % i, account=a)
        p = S.publish(DISK, name="q-10", account=a, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ImageQuotaLimitExceeded", p.stderr)
        r = h.response_of(self, self.call(a, "DescribeImages", {"Filters": [{"Name": "image-type", "Values":
                                                                               ["PRIVATE_IMAGE"]}], "Limit": 4,
                                                                 "Offset": 8}), "DescribeImages")
        self.assertEqual((r["TotalCount"], len(r["ImageSet"])), (10, 2))


class Metrics(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def test_requests_counted_by_action_and_code(self):
        a = S.account("w-metrics")
        text = S.metrics()
        h.parse_metrics(text)  # well-formed
        before = h.request_counts(text)
        c = h.sdk(S, a)
        for _ in range(3):
            c.DescribeRegions(req("DescribeRegions"))
        for _ in range(2):
            self.assertEqual(sdk_error(lambda: c.DescribeImages(req("DescribeImages", ImageIds=["bogus"]))).code,
                             "InvalidImageId.Malformed")
        h.sdk(S, a, method="GET").DescribeImageQuota(req("DescribeImageQuota"))
        self.assertEqual(sdk_error(lambda: h.sdk(S, a, secret_key="z" * 32).DescribeZones(req("DescribeZones")))
                         .code, "AuthFailure.SignatureFailure")
        self.assertEqual(sdk_error(lambda: h.common(S, a).call_json("DescribeUnicorns", {})).code, "InvalidAction")
        after = h.request_counts(S.metrics())
        self.assertTrue(after, "no request counter labelled with action and code in /metrics:\n" + text[:3000])
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        delta = {k: v for k, v in delta.items() if v}

        def by_action(action):
            return {code: v for (act, code), v in delta.items() if act == action}

        regions = by_action("DescribeRegions")
        self.assertEqual(sum(regions.values()), 3, delta)
        self.assertEqual(len(regions), 1, "one success code for DescribeRegions: %s" % delta)
        success = next(iter(regions))
        self.assertEqual(by_action("DescribeImages"), {"InvalidImageId.Malformed": 2}, delta)
        self.assertEqual(by_action("DescribeImageQuota"), {success: 1}, delta)
        self.assertEqual(by_action("DescribeZones"), {"AuthFailure.SignatureFailure": 1}, delta)
        self.assertEqual(sum(v for (act, code), v in delta.items() if code == "InvalidAction"), 1, delta)

    def test_metrics_is_prometheus_text(self):
        h.sdk(S, S.account("w-prom")).DescribeRegions(req("DescribeRegions"))
        with urllib.request.urlopen(S.url + "/metrics", timeout=30) as r:
            self.assertEqual(r.status, 200)
            ct = r.headers["Content-Type"]
            # Prometheus text 0.0.4 or OpenMetrics text: both are scraped by Prometheus.
            self.assertTrue(ct.startswith("text/plain") or ct.startswith("application/openmetrics-text"), ct)
            text = r.read().decode()
        samples = h.parse_metrics(text)
        self.assertTrue(any(n.endswith("_bucket") and "le" in l for n, l, _ in samples), "a latency histogram")
        self.assertIn("# TYPE", text)


if __name__ == "__main__":
    unittest.main()

"""ImportImage end to end with the official SDK and tccli: fixture guests built by
scripts/fixtures (make-linux.sh, make-windows.sh) and converted with qemu-img, served by a
Python http.server on 127.0.0.1 (the server runs with --allow-import-from 127.0.0.1).
Passing images in raw / qcow2 / vhd / vmdk become NORMAL with the inspected OS, platform
and architecture; failing ones become IMPORTFAILED with every failed rule in the image's
ImageDescription; Force skips guest rules but never the safety rule (a qcow2 with a
backing file); the SSRF guard refuses other addresses, also behind a redirect; uploads
with `ikon image import`; the quota and the daily limit apply."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import ServerTestCase, models, sdk, sdk_error, tccli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = {}
_DIR = None
_HTTP = None
PORT = None


def _run(cmd, env=None):
    e = dict(os.environ)
    e["PATH"] = e.get("PATH", "") + ":/usr/sbin:/sbin"
    e.update(env or {})
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=600)
    if p.returncode != 0:
        raise AssertionError("%s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))


def _linux(name, distro="debian12", **env):
    raw = os.path.join(_DIR, name + ".raw")
    _run(["bash", os.path.join(ROOT, "scripts/fixtures/make-linux.sh"), raw, distro],
         env=dict(env, TMPDIR=_DIR))
    return raw


def _windows(name, **env):
    raw = os.path.join(_DIR, name + ".raw")
    _run(["bash", os.path.join(ROOT, "scripts/fixtures/make-windows.sh"), raw], env=dict(env, TMPDIR=_DIR))
    return raw


def _convert(raw, fmt, name):
    out = os.path.join(_DIR, name)
    _run(["qemu-img", "convert", "-f", "raw", "-O", fmt, raw, out])
    return name


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the fixture directory; /redirect-private answers a redirect to 127.0.0.2."""

    def do_GET(self):
        if self.path == "/redirect-private":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:%d/debian.qcow2" % PORT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *a):
        pass


def setUpModule():
    global _DIR, _HTTP, PORT
    for tool in ("qemu-img", "mkfs.ext4", "sfdisk", "mkntfs", "hivexregedit"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            raise AssertionError("%s is missing: run scripts/install-guest-deps.sh" % tool)
    _DIR = tempfile.mkdtemp(prefix="ikon-import-fx-")
    deb = _linux("debian")
    FIX["debian.raw"] = "debian.raw"
    for fmt, ext in (("qcow2", "qcow2"), ("vpc", "vhd"), ("vmdk", "vmdk")):
        FIX["debian." + ext] = _convert(deb, fmt, "debian." + ext)
    FIX["gpt"] = _convert(_linux("gpt", TABLE="gpt"), "qcow2", "gpt.qcow2")
    FIX["gpt-novirtio"] = _convert(_linux("gptnv", TABLE="gpt", NO_VIRTIO="1"), "qcow2", "gptnv.qcow2")
    FIX["novirtio"] = _convert(_linux("novirtio", NO_VIRTIO="1"), "qcow2", "novirtio.qcow2")
    big = _linux("big", DISK_SIZE="60G")
    FIX["big"] = _convert(big, "qcow2", "big.qcow2")
    os.unlink(big)
    FIX["windows"] = _convert(_windows("win"), "qcow2", "win.qcow2")
    FIX["win2016"] = _convert(_windows("w16", PRODUCT="Windows Server 2016 Standard", CURVER="6.3",
                                       BUILD="14393"), "qcow2", "w16.qcow2")
    # Unsafe: a qcow2 whose backing file is a host file.
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw",
          os.path.join(_DIR, "backing.qcow2"), "64M"])
    FIX["backing"] = "backing.qcow2"
    _HTTP = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=_DIR))
    PORT = _HTTP.server_address[1]
    threading.Thread(target=_HTTP.serve_forever, daemon=True).start()


def tearDownModule():
    if _HTTP:
        _HTTP.shutdown()
    harness.stop_all()
    if _DIR:
        shutil.rmtree(_DIR, ignore_errors=True)


def url(key):
    return "http://127.0.0.1:%d/%s" % (PORT, FIX.get(key, key))


CONFIG = "[limits]\ncustom_images_per_region = 100\ndaily_operations = 1000\n"


def import_req(image_url, name, os_type="Debian", os_version="12", arch="x86_64", force=None, **extra):
    r = models.ImportImageRequest()
    r.ImageUrl, r.ImageName, r.OsType, r.OsVersion, r.Architecture = image_url, name, os_type, os_version, arch
    if force is not None:
        r.Force = force
    for k, v in extra.items():
        setattr(r, k, v)
    return r


def wait_image(client, image_id, timeout=600):
    """Polls DescribeImages until the image leaves IMPORTING (bounded, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        req = models.DescribeImagesRequest()
        req.ImageIds = [image_id]
        imgs = client.DescribeImages(req).ImageSet
        assert len(imgs) == 1, imgs
        if imgs[0].ImageState != "IMPORTING":
            return imgs[0]
        if time.monotonic() > deadline:
            raise AssertionError("image %s still IMPORTING after %d s" % (image_id, timeout))
        time.sleep(0.5)


class ImportSdk(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(CONFIG, name="import", args=["--allow-import-from", "127.0.0.1"])
        cls.servers = (cls.srv,)
        cls.acc = cls.srv.account("importer")
        cls.c = sdk(cls.srv, cls.acc)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def do_import(self, key, name, **kw):
        r = self.c.ImportImage(import_req(url(key), name, **kw))
        self.assertRegex(r.ImageId, r"^img-[a-z0-9]{8}$")
        return wait_image(self.c, r.ImageId)

    def test_each_format_imports(self):
        for ext in ("raw", "qcow2", "vhd", "vmdk"):
            with self.subTest(fmt=ext):
                img = self.do_import("debian." + ext, "deb-" + ext, ImageDescription="from " + ext)
                self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)
                self.assertEqual(img.ImageSource, "EXTERNAL_IMPORT")
                self.assertEqual(img.ImageType, "PRIVATE_IMAGE")
                self.assertEqual(img.Platform, "Debian")
                self.assertIn("Debian", img.OsName)
                self.assertIn("12", img.OsName)
                self.assertEqual(img.Architecture, "x86_64")
                self.assertEqual(img.ImageDescription, "from " + ext)
                self.assertEqual(img.ImageSize, 1)
                self.assertEqual(img.SnapshotSet[0].DiskUsage, "SYSTEM_DISK")

    def test_windows_imports(self):
        img = self.do_import("windows", "win2012r2", os_type="Windows Server 2012", os_version="2012 R2")
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)
        self.assertEqual(img.Platform, "Windows")
        self.assertIn("2012 R2", img.OsName)
        self.assertEqual(img.Architecture, "x86_64")

    def test_failing_images_state_every_rule(self):
        cases = [
            ("gpt", ["[partition-table]"], "Debian", "12"),
            ("big", ["[disk-size]"], "Debian", "12"),
            ("novirtio", ["[virtio]", "virtio_blk"], "Debian", "12"),
            ("win2016", ["[os]", "2016"], "Windows Server 2012", "2012 R2"),
            ("gpt-novirtio", ["[partition-table]", "[virtio]", "2 rule(s) failed"], "Debian", "12"),
        ]
        for key, needles, os_type, ver in cases:
            with self.subTest(fixture=key):
                img = self.do_import(key, "bad-" + key, os_type=os_type, os_version=ver)
                self.assertEqual(img.ImageState, "IMPORTFAILED")
                for n in needles:
                    self.assertIn(n, img.ImageDescription)
                self.assertTrue(img.ImageDescription.startswith("IMPORTFAILED: import refused"),
                                img.ImageDescription)
        # A failed import may be deleted (its quota unit comes back).
        req = models.DescribeImagesRequest()
        req.Filters = [harness.filt("image-name", ["bad-gpt"])]
        ids = [i.ImageId for i in self.c.DescribeImages(req).ImageSet if i.ImageName == "bad-gpt"]
        d = models.DeleteImagesRequest()
        d.ImageIds = ids
        self.c.DeleteImages(d)

    def test_force_skips_guest_rules(self):
        img = self.do_import("gpt-novirtio", "forced", force=True)
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)
        self.assertEqual(img.Platform, "Debian")

    def test_unsafe_image_refused_even_with_force(self):
        for force in (False, True):
            with self.subTest(force=force):
                img = self.do_import("backing", "unsafe-%s" % force, force=force)
                self.assertEqual(img.ImageState, "IMPORTFAILED")
                self.assertIn("[external-reference]", img.ImageDescription)
                self.assertIn("Force never skips safety rules", img.ImageDescription)
                # The reason names the file the user gave, never the server's spool.
                self.assertNotIn("spool", img.ImageDescription)
                self.assertNotIn(self.srv.dir, img.ImageDescription)

    def test_ssrf_guard(self):
        for bad in ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.2:%d/debian.qcow2" % PORT,
                    "http://[::1]:%d/debian.qcow2" % PORT, "http://10.1.2.3/x.qcow2",
                    "http://[fd00:ec2::254]/latest", "http://[::ffff:169.254.169.254]/",
                    "http://127.1.2.3:%d/x" % PORT, "ftp://127.0.0.1/x", "file:///etc/passwd"):
            with self.subTest(url=bad):
                e = sdk_error(lambda: self.c.ImportImage(import_req(bad, "ssrf")))
                self.assertEqual(e.code, "InvalidParameter.InvalidParameterUrlError", e.message)
        # A redirect to a refused address is caught at fetch time.
        img = self.do_import("redirect-private", "ssrf-redirect")
        self.assertEqual(img.ImageState, "IMPORTFAILED")
        self.assertIn("[ssrf-guard]", img.ImageDescription)
        self.assertIn("127.0.0.2", img.ImageDescription)

    def test_parameter_errors(self):
        for req, code in [
            (import_req(url("debian.qcow2"), "p1", os_type="Plan9"), "InvalidImageOsType.Unsupported"),
            (import_req(url("debian.qcow2"), "p2", os_version="1.0"), "InvalidImageOsVersion.Unsupported"),
            (import_req(url("debian.qcow2"), "p3", LicenseType="GPL"), "InvalidParameterValue.InvalidLicenseType"),
            (import_req(url("debian.qcow2"), "p4", BootMode="BIOS"), "InvalidParameterValue.InvalidBootMode"),
            (import_req("s3://nobucket/x.raw", "p5"), "InvalidParameter.InvalidParameterUrlError"),
            (import_req("upload://upl-zzzzzzzz", "p6"), "InvalidParameter.InvalidParameterUrlError"),
        ]:
            with self.subTest(code=code):
                self.assertEqual(sdk_error(lambda: self.c.ImportImage(req)).code, code)
        # DryRun checks only: no image appears.
        self.c.ImportImage(import_req(url("debian.qcow2"), "dry", DryRun=True))
        req = models.DescribeImagesRequest()
        req.Filters = [harness.filt("image-name", ["dry"])]
        self.assertEqual(self.c.DescribeImages(req).TotalCount, 0)

    def test_import_os_reflects_rules(self):
        r = self.c.DescribeImportImageOs(models.DescribeImportImageOsRequest())
        self.assertIn("Debian", r.ImportImageOsListSupported.Linux)
        self.assertIn("Windows Server 2012", r.ImportImageOsListSupported.Windows)
        self.assertNotIn("Windows Server 2016", r.ImportImageOsListSupported.Windows)
        win = [v for v in r.ImportImageOsVersionSet if v.OsName == "Windows Server 2012"][0]
        self.assertEqual(win.Architecture, ["x86_64"])

    def test_tccli_import(self):
        p = tccli(self.srv, self.acc, "cvm", "ImportImage", "--ImageUrl", url("debian.vmdk"),
                  "--ImageName", "via-tccli", "--OsType", "Debian", "--OsVersion", "12",
                  "--Architecture", "x86_64")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        image_id = json.loads(p.stdout)["ImageId"]
        img = wait_image(self.c, image_id)
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)
        p = tccli(self.srv, self.acc, "cvm", "ImportImage", "--ImageUrl", "http://169.254.169.254/",
                  "--ImageName", "tccli-ssrf", "--OsType", "Debian", "--OsVersion", "12",
                  "--Architecture", "x86_64")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("InvalidParameter.InvalidParameterUrlError", p.stdout + p.stderr)

    def test_cli_upload_import(self):
        p = subprocess.run(
            [harness.IKON, "image", "import", os.path.join(_DIR, FIX["debian.qcow2"]), "--endpoint", self.srv.url,
             "--secret-id", self.acc["SecretId"], "--secret-key", self.acc["SecretKey"], "--name", "uploaded",
             "--os-type", "Debian", "--os-version", "12", "--wait", "--output", "json"],
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["ImageState"], "NORMAL")
        self.assertEqual(out["Platform"], "Debian")
        self.assertEqual(out["Size"], os.path.getsize(os.path.join(_DIR, FIX["debian.qcow2"])))
        # The upload is consumed by the import; another account cannot name it.
        other = self.srv.account("other")
        e = sdk_error(lambda: sdk(self.srv, other).ImportImage(
            import_req("upload://" + out["UploadId"], "stolen")))
        self.assertEqual(e.code, "InvalidParameter.InvalidParameterUrlError")
        # A failing upload names its rules too, and the command exits 1.
        p = subprocess.run(
            [harness.IKON, "image", "import", os.path.join(_DIR, FIX["gpt"]), "--endpoint", self.srv.url,
             "--secret-id", self.acc["SecretId"], "--secret-key", self.acc["SecretKey"], "--name", "uploaded-gpt",
             "--os-type", "Debian", "--os-version", "12", "--wait"],
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("[partition-table]", p.stdout)
        # A bad signature is refused before anything is stored.
        p = subprocess.run(
            [harness.IKON, "image", "import", os.path.join(_DIR, FIX["gpt"]), "--endpoint", self.srv.url,
             "--secret-id", self.acc["SecretId"], "--secret-key", "wrong", "--name", "x",
             "--os-type", "Debian", "--os-version", "12"],
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 2)
        self.assertIn("AuthFailure.SignatureFailure", p.stderr)


class OnePolicy(ServerTestCase):
    """`ikon img precheck --rules NAME [--config FILE]` and `ikon serve --preset NAME [--config
    FILE]` read the same policy document: a sparse 60 GiB guest fails under tencent (50 GiB)
    and passes under alibaba (500 GiB) both offline and on import, and an operator's override
    moves both verdicts alike; `ikon admin policy show` prints the policy in force."""

    BIGGER = "[import]\nmax_system_disk_gib = 64\n"

    @classmethod
    def setUpClass(cls):
        args = ["--allow-import-from", "127.0.0.1"]
        cls.tencent = harness.Server(CONFIG, name="policy-tc", args=args)
        cls.alibaba = harness.Server(CONFIG, name="policy-ali", preset="alibaba", args=args)
        cls.bigger = harness.Server(CONFIG + cls.BIGGER, name="policy-big", args=args)
        cls.servers = (cls.tencent, cls.alibaba, cls.bigger)

    @classmethod
    def tearDownClass(cls):
        for s in cls.servers:
            s.stop()

    def precheck(self, *args):
        p = subprocess.run([harness.IKON, "img", "precheck", *args, "--output", "json",
                            os.path.join(_DIR, FIX["big"])],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        verdicts = {v["id"]: v["verdict"] for v in json.loads(p.stdout)["verdicts"]}
        return p.returncode, verdicts

    def imported(self, srv, region, name):
        c = sdk(srv, srv.account(name), region)
        return wait_image(c, c.ImportImage(import_req(url("big"), name)).ImageId)

    def test_the_same_verdict_offline_and_on_import(self):
        code, v = self.precheck("--rules", "tencent")
        self.assertEqual((code, v["disk-size"]), (1, "fail"))
        img = self.imported(self.tencent, "ap-guangzhou", "big-tc")
        self.assertEqual(img.ImageState, "IMPORTFAILED")
        self.assertIn("[disk-size]", img.ImageDescription)

        code, v = self.precheck("--rules", "alibaba")
        self.assertEqual((code, v["disk-size"]), (0, "pass"))
        img = self.imported(self.alibaba, "cn-hangzhou", "big-ali")
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)

        # The operator's file moves the offline verdict and the service's alike.
        cfg = os.path.join(_DIR, "bigger.toml")
        with open(cfg, "w") as f:
            f.write(self.BIGGER)
        code, v = self.precheck("--rules", "tencent", "--config", cfg)
        self.assertEqual((code, v["disk-size"]), (0, "pass"))
        img = self.imported(self.bigger, "ap-guangzhou", "big-override")
        self.assertEqual(img.ImageState, "NORMAL", img.ImageDescription)

    def test_policy_show_prints_the_merged_policy(self):
        import tomllib
        pol = json.loads(self.alibaba.admin("policy", "show", "--output", "json").stdout)
        self.assertEqual((pol["preset"], pol["import"]["max_system_disk_gib"]), ("alibaba", 500))
        self.assertEqual(pol["names"]["image_name"]["max"], 128)
        self.assertEqual(pol["limits"]["daily_operations"], 1000)  # the file's override
        t = tomllib.loads(self.alibaba.admin("policy", "show", "--preset", "tencent").stdout)
        self.assertEqual((t["preset"], t["import"]["max_system_disk_gib"]), ("tencent", 50))
        self.assertEqual(t["names"]["image_name"]["max"], 60)
        self.assertEqual(t["limits"]["daily_limited_actions"],
                         ["CreateImage", "ImportImage", "SyncImages", "ExportImages"])
        self.assertEqual(t["limits"]["daily_operations"], 1000)
        self.assertEqual(t["instances"]["default_instance_type"], "S5.SMALL1")


class ImportLimits(ServerTestCase):
    """The custom-image quota and the daily operation limit apply to ImportImage."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server("[limits]\ncustom_images_per_region = 1\ndaily_operations = 3\n",
                                 name="import-limits", args=["--allow-import-from", "127.0.0.1"])
        cls.servers = (cls.srv,)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_quota_then_daily_limit(self):
        acc = self.srv.account("limited")
        c = sdk(self.srv, acc)
        first = c.ImportImage(import_req(url("debian.qcow2"), "one")).ImageId
        e = sdk_error(lambda: c.ImportImage(import_req(url("debian.qcow2"), "two")))
        self.assertEqual(e.code, "ImageQuotaLimitExceeded")
        self.assertEqual(wait_image(c, first).ImageState, "NORMAL")
        e = sdk_error(lambda: c.ImportImage(import_req(url("debian.qcow2"), "three")))
        self.assertEqual(e.code, "ImageQuotaLimitExceeded")
        e = sdk_error(lambda: c.ImportImage(import_req(url("debian.qcow2"), "four")))
        self.assertEqual(e.code, "LimitExceeded")


if __name__ == "__main__":
    unittest.main()

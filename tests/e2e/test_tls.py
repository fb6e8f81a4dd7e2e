"""TLS end to end: `ikon serve --tls-cert --tls-key --nbd-tls require` serves the API over
HTTPS to Tencent's own SDK (verifying the server against its CA) and refuses plain HTTP;
NBD requires NBD_OPT_STARTTLS: qemu-io without TLS is refused, qemu-io and qemu-img with
`tls-creds-x509` write, flush and read back through it."""

import hashlib
import hmac
import http.client
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import harness as h
from harness import req, sdk_error

S = None
WORK = None
CREDS = None
ZONE = "ap-guangzhou-3"


def openssl(*args):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr))


def make_pki(d):
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it; CREDS holds the
    CA as qemu's tls-creds-x509 wants it (ca-cert.pem)."""
    ca_key, ca = os.path.join(d, "ca-key.pem"), os.path.join(d, "ca.pem")
    key, csr, cert = os.path.join(d, "key.pem"), os.path.join(d, "req.csr"), os.path.join(d, "cert.pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", "/CN=Ikon test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "2", "-extfile", ext)
    creds = os.path.join(d, "creds")
    os.makedirs(creds)
    shutil.copy(ca, os.path.join(creds, "ca-cert.pem"))
    return ca, cert, key, creds


def setUpModule():
    global S, WORK, CREDS
    h.require_tools()
    for tool in ("openssl", "qemu-io", "qemu-img"):
        if not shutil.which(tool):
            raise AssertionError("%s is required (scripts/install-test-deps.sh)" % tool)
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-tls-")
    ca, cert, key, CREDS = make_pki(WORK)
    S = h.Server("", "tls", args=["--tls-cert", cert, "--tls-key", key, "--nbd-tls", "require"], ca=ca)
    if S.scheme != "https" or not S.nbd:
        raise AssertionError("ikon serve did not serve https and NBD:\n" + S.log())


def tearDownModule():
    try:
        if S:
            S.stop()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


def export_name(acc, disk_id):
    token = hmac.new(acc["SecretKey"].encode(), ("ikon-nbd-v1:" + disk_id).encode(), hashlib.sha256).hexdigest()
    return "%s/%s/%s" % (disk_id, acc["SecretId"], token)


def nbd_opts(name, tls=True):
    host, port = S.nbd.rsplit(":", 1)
    o = "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=%s,file.server.port=%s,file.export=%s" % (
        host, port, name)
    return o + (",file.tls-creds=tls0" if tls else "")


def qemu(tool, *args, tls=True):
    """qemu-io ARGS or qemu-img SUBCOMMAND ARGS, with the client TLS credentials object."""
    obj = ["--object", "tls-creds-x509,id=tls0,endpoint=client,dir=%s" % CREDS] if tls else []
    args = list(args)
    cmd = [tool] + (args[:1] + obj + args[1:] if tool == "qemu-img" else obj + args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


class Tls(h.ServerTestCase):
    @property
    def servers(self):
        return [S] if S else []

    def test_sdk_over_https_and_no_plain_http(self):
        acc = S.account("tls")
        c = h.sdk(S, acc)
        r = c.DescribeRegions(req("DescribeRegions"))
        self.assertGreater(r.TotalCount, 0)
        self.assertEqual(c.DescribeImages(req("DescribeImages")).TotalCount, 0)
        e = sdk_error(lambda: h.sdk(S, acc, secret_key="x" * 32).DescribeImages(req("DescribeImages")))
        self.assertEqual(e.code, "AuthFailure.SignatureFailure")
        with self.assertRaises((urllib.error.URLError, http.client.HTTPException, OSError)):
            urllib.request.urlopen("http://%s/metrics" % S.addr, timeout=10).read()

    def test_nbd_requires_starttls(self):
        acc = S.account("tlsnbd")
        disk = h.make_disk(WORK, name="tls.qcow2", size_mib=16, data_mib=1)
        image = S.publish(disk, name="tls-img", account=acc, os_name="Debian 12 64bit", platform="Debian")["ImageId"]
        c = h.sdk(S, acc)
        (ins,) = c.RunInstances(req("RunInstances", ImageId=image, Placement={"Zone": ZONE})).InstanceIdSet
        d = c.DescribeInstances(req("DescribeInstances", InstanceIds=[ins])).InstanceSet[0].SystemDisk.DiskId
        name = export_name(acc, d)
        # Without TLS: refused before any export is opened.
        p = qemu("qemu-io", "--image-opts", nbd_opts(name, tls=False), "-c", "read 0 4k", tls=False)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("TLS", p.stdout + p.stderr)
        # With TLS: write, flush, read back, also from a second connection.
        p = qemu("qemu-io", "--image-opts", nbd_opts(name), "-c", "write -P 0x6b 1M 64k", "-c", "flush")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("failed", (p.stdout + p.stderr).lower())
        p = qemu("qemu-io", "--image-opts", nbd_opts(name), "-c", "read -P 0x6b 1M 64k")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("failed", (p.stdout + p.stderr).lower())
        out = os.path.join(WORK, "copy.raw")
        p = qemu("qemu-img", "convert", "--image-opts", nbd_opts(name), "-O", "raw", out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(out, "rb") as f:
            f.seek(1 << 20)
            self.assertEqual(f.read(65536), b"\x6b" * 65536)

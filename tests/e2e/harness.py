"""Harness for the end-to-end tests: a real `ikon serve`, its admin CLI, and the official
Tencent Cloud clients (Python SDK and tccli) pointed at it.

Everything here fails loudly: a missing binary, SDK or tccli raises, never skips.
Environment:
  IKON_BIN            the `ikon` binary (required; tests/e2e/run.sh sets it)
  IKON_TCCLI          the `tccli` executable (default: next to this Python)
  IKON_E2E_DATABASE   a PostgreSQL URL: each server gets a fresh database on that cluster;
                      empty → the embedded SQLite catalog in the data dir
"""

import atexit
import ctypes
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.sign import Sign
from tencentcloud.cvm.v20170312 import cvm_client, models

IKON = os.environ.get("IKON_BIN", "")
TCCLI = os.environ.get("IKON_TCCLI") or os.path.join(os.path.dirname(sys.executable), "tccli")
DATABASE = os.environ.get("IKON_E2E_DATABASE", "")
VERSION = "2017-03-12"
REGIONS = {
    "ap-guangzhou": ["ap-guangzhou-3", "ap-guangzhou-4", "ap-guangzhou-6", "ap-guangzhou-7"],
    "ap-beijing": ["ap-beijing-3", "ap-beijing-4", "ap-beijing-5", "ap-beijing-6", "ap-beijing-7"],
    "ap-shanghai": ["ap-shanghai-2", "ap-shanghai-3", "ap-shanghai-4", "ap-shanghai-5"],
    "ap-hongkong": ["ap-hongkong-2", "ap-hongkong-3"],
    "na-siliconvalley": ["na-siliconvalley-1", "na-siliconvalley-2"],
    "na-ashburn": ["na-ashburn-1", "na-ashburn-2"],
}

# Proxies would intercept the clients' loopback calls (the SDK honours HTTP_PROXY).
for _v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_v, None)


def require_tools():
    """Fails (never skips) when the server binary or a client is missing."""
    if not IKON or not os.access(IKON, os.X_OK):
        raise AssertionError("IKON_BIN must name the built `ikon` binary (got %r); run tests/e2e/run.sh" % IKON)
    if not os.access(TCCLI, os.X_OK):
        raise AssertionError("tccli not found at %s; run scripts/install-api-clients.sh" % TCCLI)
    if shutil.which("qemu-img") is None:
        raise AssertionError("qemu-img is required to make test disk images")


_SERVERS = []


def _die_with_parent():
    """In the child before exec: SIGTERM it when the test runner dies (even by SIGKILL), so a
    crashed or interrupted run leaves no `ikon serve` behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Server:
    """`ikon serve` on a free port (port 0, address read from its readiness line) with a
    temporary data dir, a config file and, with IKON_E2E_DATABASE, a fresh PostgreSQL DB."""

    def __init__(self, config="", name="e2e", args=(), preset=None, ca=None):
        require_tools()
        # With --tls-cert: the CA file clients verify the server's certificate with.
        self.ca = ca
        self.extra_args = list(args)
        # `--preset` for both `serve` and `admin` (region ids, limits and import rules).
        self.preset_args = ["--preset", preset] if preset else []
        self.dir = tempfile.mkdtemp(prefix="ikon-%s-" % name)
        self.config = os.path.join(self.dir, "ikon.toml")
        with open(self.config, "w") as f:
            f.write(config)
        self.db_args = []
        self.db = None
        if DATABASE:
            self.db = db = "e2e_%s" % secrets.token_hex(6)
            subprocess.run(["psql", DATABASE, "-q", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE %s" % db],
                           check=True, capture_output=True, text=True)
            self.db_args = ["--database", DATABASE.rsplit("/", 1)[0] + "/" + db]
        self.start(first=True)

    def start(self, first=False):
        """Starts `ikon serve` on the data dir; waits for its readiness line (no sleeps)."""
        self.lines = []
        self.ready = threading.Event()
        self.addr = None
        self.nbd = None
        self.printed_admin = False
        if first:
            self.admin_id = self.admin_key = None
        self.stderr = open(os.path.join(self.dir, "serve.stderr"), "a+")
        self.proc = subprocess.Popen(
            [IKON, "serve", "--data-dir", os.path.join(self.dir, "data"), "--listen", "127.0.0.1:0",
             "--nbd-listen", "127.0.0.1:0", "--config", self.config] + self.preset_args + self.db_args
            + self.extra_args,
            stdout=subprocess.PIPE, stderr=self.stderr, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=_die_with_parent)
        if self not in _SERVERS:
            _SERVERS.append(self)
        self.reader = threading.Thread(target=self._read_stdout, daemon=True)
        self.reader.start()
        if not self.ready.wait(120) or not self.addr:
            log = self.log()
            self.stop()
            raise AssertionError("ikon serve did not print its readiness line:\n" + log)
        if first and not (self.admin_id and self.admin_key):
            raise AssertionError("the first start of a fresh data dir must print the platform administrator's "
                                 "keys before the readiness line:\n" + self.log())
        self.host = self.addr
        self.url = self.scheme + "://" + self.addr

    def restart(self):
        """Stops the process (keeping the data) and starts it again on a new port."""
        self._terminate()
        self.start()

    def _read_stdout(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            m = re.search(r"platform administrator: SecretId=(\S+) SecretKey=(\S+)", line)
            if m:
                self.admin_id, self.admin_key = m.group(1), m.group(2)
                self.printed_admin = True
            m = re.match(r"ikon nbd listening on nbd://(\S+)", line)
            if m:
                self.nbd = m.group(1)
            m = re.match(r"ikon listening on (https?)://(\S+)", line)
            if m:
                self.scheme, self.addr = m.group(1), m.group(2)
                self.ready.set()
        self.ready.set()  # EOF: the server exited

    def log(self, tail=6000):
        self.stderr.flush()
        with open(self.stderr.name, errors="replace") as f:
            err = f.read()
        return ("--- ikon serve stdout ---\n" + "".join(self.lines) + "--- ikon serve stderr (tail) ---\n"
                + err[-tail:] + ("\n(exit status %s)" % self.proc.returncode if self.proc.poll() is not None else ""))

    def admin(self, *args, check=True):
        p = subprocess.run([IKON, "admin", "--data-dir", os.path.join(self.dir, "data"), "--config", self.config]
                           + self.preset_args + self.db_args + [str(a) for a in args],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError("ikon admin %s failed (exit %d):\n%s%s" % (" ".join(map(str, args)), p.returncode,
                                                                         p.stdout, p.stderr))
        return p

    def account(self, name):
        out = json.loads(self.admin("account", "create", "%s-%s" % (name, secrets.token_hex(3)), "--output",
                                    "json").stdout)
        assert re.fullmatch(r"\d{12}", out["AccountId"]), out
        assert out["SecretId"].startswith("AKID") and out["SecretKey"], out
        return out

    def publish(self, path, region="ap-guangzhou", name=None, account=None, os_name=None, platform=None,
                count=None, family=None, check=True):
        args = ["image", "publish", "--region", region, "--name", name or "img-%s" % secrets.token_hex(3)]
        if os_name:
            args += ["--os-name", os_name]
        if platform:
            args += ["--platform", platform]
        if account:
            args += ["--account", account["AccountId"] if isinstance(account, dict) else account]
        if count:
            args += ["--count", count]
        if family:
            args += ["--family", family]
        p = self.admin(*(args + ["--output", "json", path]), check=check)
        if p.returncode != 0:
            return p
        out = json.loads(p.stdout)
        assert re.fullmatch(r"img-[a-z0-9]{8}", out["ImageId"]), out
        return out

    def metrics(self):
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            assert r.status == 200
            return r.read().decode()

    def _terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Anything left in its process group (there should be nothing) goes too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.reader.join(10)
        self.proc.stdout.close()
        self.stderr.close()

    def stop(self):
        if self in _SERVERS:
            _SERVERS.remove(self)
        self._terminate()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.db:
            subprocess.run(["psql", DATABASE, "-q", "-c", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db],
                           capture_output=True, text=True)
            self.db = None


def stop_all():
    for s in list(_SERVERS):
        s.stop()


atexit.register(stop_all)
# SIGTERM to the runner: unwind (tearDownModule, atexit) instead of dying on the spot.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def make_disk(dirpath, name="disk.qcow2", size_mib=16, data_mib=2):
    """A small qcow2 (qemu-img) with some random data so that it is not all zeroes."""
    raw = os.path.join(dirpath, name + ".raw")
    with open(raw, "wb") as f:
        f.truncate(size_mib << 20)
        f.seek(1 << 20)
        f.write(os.urandom(data_mib << 20))
    out = os.path.join(dirpath, name)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out], check=True)
    os.unlink(raw)
    return out


# ---------------------------------------------------------------------------------------
# Clients


def _profile(server, method):
    if getattr(server, "scheme", "http") == "https":
        return HttpProfile(endpoint=server.addr, protocol="https", reqMethod=method, certification=server.ca)
    return HttpProfile(endpoint=server.addr, protocol="http", reqMethod=method)


def sdk(server, acc, region="ap-guangzhou", method="POST", secret_key=None, secret_id=None, language=None):
    """The typed CVM client, exactly as a user would configure it for the endpoint (HTTPS
    with the server's CA when it serves TLS)."""
    hp = _profile(server, method)
    cp = ClientProfile(httpProfile=hp)
    if language:
        cp.language = language
    cred = credential.Credential(secret_id or acc["SecretId"], secret_key or acc["SecretKey"])
    return cvm_client.CvmClient(cred, region, cp)


def common(server, acc, region="ap-guangzhou", method="POST", service="cvm"):
    """The SDK's generic client: call_json returns the raw response JSON (for schema checks)."""
    hp = _profile(server, method)
    cred = credential.Credential(acc["SecretId"], acc["SecretKey"])
    return CommonClient(service, VERSION, cred, region, ClientProfile(httpProfile=hp))


def req(model_name, **fields):
    """A request model with fields set, e.g. req("DescribeImages", ImageIds=[...])."""
    m = getattr(models, model_name + "Request")()
    for k, v in fields.items():
        if k == "Filters":
            v = [filt(n, vals) for n, vals in v]
        if not hasattr(m, k):
            raise AttributeError("%sRequest has no field %s" % (model_name, k))
        setattr(m, k, v)
    return m


def filt(name, values):
    f = models.Filter()
    f.Name, f.Values = name, list(values)
    return f


def sdk_error(fn):
    """Runs fn; returns the SDK exception (asserting it carries a RequestId) or fails."""
    try:
        r = fn()
    except TencentCloudSDKException as e:
        if not e.requestId:
            raise AssertionError("error without RequestId: %s" % e)
        return e
    raise AssertionError("expected an API error, got success: %s" % (r.to_json_string() if hasattr(r, "to_json_string")
                                                                       else r))


def sign_headers(secret_id, secret_key, host, action, method="POST", body=b"", query="", ts=None,
                 region="ap-guangzhou", content_type=None, service="cvm"):
    """TC3 headers computed by hand around the SDK's own HMAC chain (Sign.sign_tc3)."""
    ts = int(time.time() if ts is None else ts)
    if content_type is None:
        content_type = "application/json" if method == "POST" else "application/x-www-form-urlencoded"
    canonical = "\n".join([method, "/", query if method == "GET" else "",
                           "content-type:%s\nhost:%s\n" % (content_type, host), "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    date = time.strftime("%Y-%m-%d", time.gmtime(ts))
    scope = "%s/%s/tc3_request" % (date, service)
    to_sign = "TC3-HMAC-SHA256\n%d\n%s\n%s" % (ts, scope, hashlib.sha256(canonical.encode()).hexdigest())
    sig = Sign.sign_tc3(secret_key, date, service, to_sign)
    h = {"Content-Type": content_type, "Host": host, "X-TC-Action": action, "X-TC-Version": VERSION,
         "X-TC-Timestamp": str(ts), "X-TC-Language": "en-US",
         "Authorization": "TC3-HMAC-SHA256 Credential=%s/%s, SignedHeaders=content-type;host, Signature=%s"
                          % (secret_id, scope, sig)}
    if region:
        h["X-TC-Region"] = region
    return h


def raw_call(server, acc, action, params=None, method="POST", query=None, ts=None, region="ap-guangzhou",
             headers=None, content_type=None):
    """A hand-signed request. POST: params as JSON body. GET: `query` sent (and signed) verbatim.
    Returns (HTTP status, response headers, parsed JSON)."""
    body = json.dumps(params or {}).encode() if method == "POST" else b""
    query = query or ""
    h = sign_headers(acc["SecretId"], acc["SecretKey"], server.addr, action, method, body, query, ts, region,
                     content_type)
    h.update(headers or {})
    url = server.url + "/" + ("?" + query if query else "")
    r = urllib.request.Request(url, data=body if method == "POST" else None, method=method, headers=h)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


def tccli(server, acc, service, action, *args, region="ap-guangzhou", home=None):
    """tccli with credentials from the environment and `--endpoint http://HOST:PORT` (the
    scheme-in-endpoint form: literal Host header `http://HOST:PORT`). Returns CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")}
    env.update(TENCENTCLOUD_SECRET_ID=acc["SecretId"], TENCENTCLOUD_SECRET_KEY=acc["SecretKey"],
               HOME=home or tempfile.gettempdir())
    env.pop("TCCLI_PROFILE", None)
    cmd = [TCCLI, service, action] + [str(a) for a in args] + ["--region", region, "--endpoint", server.url]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------
# SDK model schema: field names and types as the installed SDK declares them


_TYPE_RE = re.compile(r":type (\w+): (.+)")


def model_fields(name):
    """{field: (type text, nullable)} parsed from the SDK model's docstring."""
    cls = getattr(models, name)
    doc = cls.__init__.__doc__ or ""
    fields = {}
    for block in re.split(r"\n\s*:param _", doc)[1:]:
        m = _TYPE_RE.search(block)
        if m:
            fields[m.group(1)] = (m.group(2).strip(), "null" in block.split(":type")[0])
    if not fields:
        raise AssertionError("could not read the field list of SDK model %s" % name)
    return fields


def check_model(tc, value, name, where=None):
    """Asserts that a JSON object has only fields the SDK model declares, each of the declared
    JSON type (str/int/bool/float/list of …/nested model); nulls only where the SDK says the
    field may be null. Returns the object."""
    where = where or name
    tc.assertIsInstance(value, dict, "%s must be a JSON object" % where)
    fields = model_fields(name)
    for k, v in value.items():
        if k == "RequestId" and name.endswith("Response"):
            tc.assertIsInstance(v, str)
            continue
        tc.assertIn(k, fields, "%s.%s is not a field of the SDK model %s (declared: %s)"
                    % (where, k, name, ", ".join(sorted(fields))))
        typ, nullable = fields[k]
        _check_type(tc, v, typ, nullable, "%s.%s" % (where, k))
    return value


def _check_type(tc, v, typ, nullable, where):
    # Nested models are written `Image` or ":class:`tencentcloud.cvm.v20170312.models.Image`".
    typ = re.sub(r":class:`(?:[\w.]+\.)?(\w+)`", r"\1", typ)
    if v is None:
        tc.assertTrue(nullable, "%s is null but the SDK model does not declare it nullable" % where)
        return
    if typ.startswith("list of "):
        tc.assertIsInstance(v, list, "%s must be a JSON array" % where)
        for i, item in enumerate(v):
            _check_type(tc, item, typ[len("list of "):], False, "%s[%d]" % (where, i))
    elif typ == "str":
        tc.assertIsInstance(v, str, "%s must be a string, got %r" % (where, v))
    elif typ == "int":
        tc.assertTrue(isinstance(v, int) and not isinstance(v, bool), "%s must be an integer, got %r" % (where, v))
    elif typ == "bool":
        tc.assertIsInstance(v, bool, "%s must be a boolean, got %r" % (where, v))
    elif typ == "float":
        tc.assertTrue(isinstance(v, (int, float)) and not isinstance(v, bool), "%s must be a number" % where)
    elif hasattr(models, typ):
        check_model(tc, v, typ, where)
    else:
        raise AssertionError("unknown SDK type %r for %s" % (typ, where))


def response_of(tc, raw, action):
    """Checks the envelope {"Response": {…, "RequestId": uuid}} and the fields against
    <Action>Response; returns the inner object."""
    tc.assertEqual(list(raw.keys()), ["Response"], raw)
    r = raw["Response"]
    tc.assertNotIn("Error", r, r)
    tc.assertRegex(r.get("RequestId", ""), r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    return check_model(tc, r, action + "Response")


def error_of(tc, raw):
    """Checks an error envelope; returns its code."""
    tc.assertEqual(list(raw.keys()), ["Response"], raw)
    r = raw["Response"]
    tc.assertIn("Error", r, r)
    tc.assertEqual(set(r.keys()), {"Error", "RequestId"}, r)
    tc.assertEqual(set(r["Error"].keys()), {"Code", "Message"}, r)
    tc.assertTrue(r["Error"]["Message"], "errors carry a message")
    tc.assertRegex(r["RequestId"], r"^[0-9a-f-]{36}$")
    return r["Error"]["Code"]


# ---------------------------------------------------------------------------------------
# Prometheus text


_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] for every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("malformed Prometheus line: %r" % line)
        out.append((m.group(1), dict(_LABEL_RE.findall(m.group(2) or "")), float(m.group(3))))
    return out


def request_counts(text):
    """{(action, code): count} summed over every counter whose labels name an action and a
    code (e.g. ikon_api_requests_total{dialect,action,code})."""
    counts = {}
    for name, labels, value in parse_metrics(text):
        if name.endswith("_total") and "action" in labels and "code" in labels and "request" in name:
            key = (labels["action"], labels["code"])
            counts[key] = counts.get(key, 0) + value
    return counts


class ServerTestCase(unittest.TestCase):
    """Base class: shows the server log of the class's server(s) when a test fails."""

    servers = ()

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for s in self.servers:
                sys.stderr.write("\n==== server log for failed %s ====\n%s\n" % (self.id(), s.log()))
        return out

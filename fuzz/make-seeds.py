#!/usr/bin/env python3
"""Seeds for the fuzz targets that need no external tool: the read-only disk formats
(Bochs, Parallels v1, cloop, DMG; layouts as in crates/ikon-disk/tests/foreign.rs) and the
API targets (correctly signed TC3 / ACS3 / V1 requests at the fuzz clock, parameter sets).
Deterministic. Usage: make-seeds.py SEEDS_DIR (normally fuzz/seeds; fuzz/make-seeds.sh
calls it)."""
import base64
import hashlib
import hmac
import os
import struct
import sys
import urllib.parse
import zlib

OUT = sys.argv[1]
NOW = 1_700_000_000  # fuzz/src/api.rs NOW: 2023-11-14T22:13:20Z
SECRET = "fuzz-secret"  # fuzz/src/api.rs SECRET


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def le32(b, off, v):
    b[off:off + 4] = struct.pack("<I", v)


def le64(b, off, v):
    b[off:off + 8] = struct.pack("<Q", v)


def be32(b, off, v):
    b[off:off + 4] = struct.pack(">I", v)


def be64(b, off, v):
    b[off:off + 8] = struct.pack(">Q", v)


# ------------------------------------------------------------------ Bochs
def bochs(version):
    b = bytearray(512)
    b[:22] = b"Bochs Virtual HD Image"
    b[32:39] = b"Redolog"
    b[48:55] = b"Growing"
    le32(b, 64, version)
    le32(b, 68, 512)
    le32(b, 72, 8)
    le32(b, 76, 1)
    le32(b, 80, 4096)
    le64(b, 84 if version == 0x10000 else 88, 8 * 4096)
    cat = bytearray(b"\xff" * 32)
    le32(cat, 8, 0)
    b += cat
    bitmap = bytearray(512)
    bitmap[0] = 0b1000_1001
    b += bitmap
    b += bytes((i % 241) + 3 for i in range(4096))
    return bytes(b)


put("bochs", "v2-growing.bochs", bochs(0x20000))
put("bochs", "v1-growing.bochs", bochs(0x10000))


# ------------------------------------------------------------------ Parallels v1
def parallels_v1():
    b = bytearray(4096)
    b[:16] = b"WithoutFreeSpace"
    le32(b, 16, 2)
    le32(b, 20, 16)
    le32(b, 24, 1)
    le32(b, 28, 8)
    le32(b, 32, 4)
    le64(b, 36, 32)
    le32(b, 48, 8)
    le32(b, 64 + 4, 8)
    le32(b, 64 + 12, 16)
    b += bytes((i % 251) + 1 for i in range(4096))
    b += bytes((i % 13) + 7 for i in range(4096))
    return bytes(b)


put("parallels", "v1-synthetic.hds", parallels_v1())


# ------------------------------------------------------------------ cloop
def cloop():
    bs = 4096
    data = bytes(0 if i < bs else (i * 7 % 253) for i in range(3 * bs))
    b = bytearray(b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\nexit $?\n")
    b += bytes(128 - len(b))
    b += struct.pack(">II", bs, 3)
    blocks = [zlib.compress(data[i:i + bs]) for i in range(0, len(data), bs)]
    off = 136 + 4 * 8
    for n in [len(x) for x in blocks] + [0]:
        b += struct.pack(">Q", off)
        off += n
    for x in blocks:
        b += x
    return bytes(b)


put("cloop", "v2-3blocks.cloop", cloop())


# ------------------------------------------------------------------ DMG
def dmg_chunk(t, sector, count, off, length):
    e = bytearray(40)
    be32(e, 0, t)
    be64(e, 8, sector)
    be64(e, 16, count)
    be64(e, 24, off)
    be64(e, 32, length)
    return bytes(e)


def dmg(rsrc):
    exp = bytearray(16 * 512)
    for i in range(2 * 512, 9 * 512):
        exp[i] = (i % 239) + 1
    for i in range(12 * 512, 16 * 512):
        exp[i] = i % 17
    f = bytearray(1024)
    fork = len(f)
    raw = bytes(exp[2 * 512:5 * 512])
    z1 = zlib.compress(bytes(exp[5 * 512:9 * 512]))
    z2 = zlib.compress(bytes(exp[12 * 512:16 * 512]))
    blob = len(f)
    f += raw + z1
    blob2 = len(f)
    f += z2

    def mk(first, data_off, chunks):
        m = bytearray(204)
        m[:4] = b"mish"
        be32(m, 4, 1)
        be64(m, 8, first)
        be64(m, 24, data_off)
        be32(m, 200, len(chunks))
        for c in chunks:
            m += c
        return bytes(m)

    t1 = mk(0, blob - fork, [
        dmg_chunk(0, 0, 2, 0, 0),
        dmg_chunk(1, 2, 3, 0, len(raw)),
        dmg_chunk(0x7FFFFFFE, 5, 0, 0, 0),
        dmg_chunk(0x80000005, 5, 4, len(raw), len(z1)),
        dmg_chunk(2, 9, 1, 0, 0),
        dmg_chunk(0xFFFFFFFF, 10, 0, 0, 0),
    ])
    t2 = mk(12, blob2 - fork, [dmg_chunk(0x80000005, 0, 4, 0, len(z2)), dmg_chunk(0xFFFFFFFF, 4, 0, 0, 0)])
    meta_off = len(f)
    if rsrc:
        res = b"".join(struct.pack(">I", len(t)) + t for t in (t1, t2))
        fk = bytearray(256)
        be32(fk, 0, 256)
        be32(fk, 8, len(res))
        fk += res + bytes(30)
        f += fk
        meta_len = len(fk)
    else:
        b64 = lambda d: base64.b64encode(d).decode()
        xml = ("<?xml version=\"1.0\"?>\n<plist version=\"1.0\"><dict><key>resource-fork</key><dict><key>blkx</key><array>\n"
               "<dict><key>Data</key>\n<data>\n\t\t\t%s\n\t\t\t</data></dict>\n"
               "<dict><key>Data</key><data>%s</data></dict>\n"
               "<dict><key>Data</key><data>%s</data></dict></array></dict></dict></plist>\n"
               % (b64(t1), b64(b"not a mish table"), b64(t2)))
        f += xml.encode()
        meta_len = len(xml)
    k = bytearray(512)
    k[:4] = b"koly"
    be32(k, 4, 4)
    be32(k, 8, 512)
    be64(k, 0x18, fork)
    be64(k, 0x20, meta_off - fork)
    if rsrc:
        be64(k, 0x28, meta_off)
        be64(k, 0x30, meta_len)
    else:
        be64(k, 0xD8, meta_off)
        be64(k, 0xE0, meta_len)
    be64(k, 0x1EC, 16)
    f += k
    return bytes(f)


put("dmg", "xml-plist.dmg", dmg(False))
put("dmg", "resource-fork.dmg", dmg(True))
for t, name, data in [("detect", "v2.bochs", bochs(0x20000)), ("detect", "v2.cloop", cloop()),
                      ("detect", "xml.dmg", dmg(False)), ("detect", "v1.hds", parallels_v1())]:
    put(t, name, data)


# ------------------------------------------------------------------ Tencent TC3
def utc_date(ts):
    import datetime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d")


def tc3(method, host, query, body, signed=("content-type", "host"), secret=SECRET, sign_host=None):
    """Authorization for fuzz/src/api.rs tencent_auth (its fixed headers)."""
    headers = {"host": sign_host or host, "content-type": "application/json; charset=utf-8",
               "x-tc-action": "DescribeImages"}
    canon_h = "".join("%s:%s\n" % (h, headers.get(h, "").strip()) for h in signed)
    payload = hashlib.sha256(body.encode()).hexdigest()
    canonical = "\n".join([method, "/", query if method == "GET" else "", canon_h, ";".join(signed), payload])
    date = utc_date(NOW)
    sts = "TC3-HMAC-SHA256\n%d\n%s/cvm/tc3_request\n%s" % (NOW, date, hashlib.sha256(canonical.encode()).hexdigest())
    k = lambda key, msg: hmac.new(key, msg.encode(), hashlib.sha256).digest()
    key = k(k(k(("TC3" + secret).encode(), date), "cvm"), "tc3_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    return "TC3-HMAC-SHA256 Credential=AKIDfuzz/%s/cvm/tc3_request, SignedHeaders=%s, Signature=%s" % (
        date, ";".join(signed), sig)


body = '{"ImageIds":["img-12345678"],"Limit":10}'
put("tencent_auth", "post-signed.txt",
    "\n".join([tc3("POST", "cvm.tencentcloudapi.com", "", body), str(NOW), "cvm.tencentcloudapi.com", "", body]))
q = "Action=DescribeImages&ImageIds.0=img-12345678&Filters.0.Name=image-type&Filters.0.Values.0=PRIVATE_IMAGE"
put("tencent_auth", "get-signed.txt",
    "\n".join([tc3("GET", "127.0.0.1:8080", q, "", signed=("content-type", "host", "x-tc-action")),
               str(NOW), "127.0.0.1:8080", q, ""]))
# Signed for the host without its port: verified on the retry.
put("tencent_auth", "port-retry.txt",
    "\n".join([tc3("POST", "[::1]:8080", "", body, sign_host="[::1]"), str(NOW), "[::1]:8080", "", body]))
put("tencent_auth", "bad-signature.txt",
    "\n".join([tc3("POST", "h", "", body, secret="other"), str(NOW - 600), "h:", "", body]))


# ------------------------------------------------------------------ Alibaba V3 and V1
def pct(s):
    return urllib.parse.quote(s, safe="-_.~")


def iso(ts):
    import datetime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def acs3(host, query_pairs, date):
    headers = {"host": host, "x-acs-date": date, "x-acs-signature-nonce": "nonce",
               "x-acs-action": "DescribeImages"}
    names = sorted(["host", "x-acs-action", "x-acs-date", "x-acs-signature-nonce"])
    q = "&".join("%s=%s" % kv for kv in sorted((pct(k), pct(v)) for k, v in query_pairs))
    canon_h = "".join("%s:%s\n" % (h, headers[h].strip()) for h in names)
    payload = hashlib.sha256(b"").hexdigest()
    canonical = "\n".join(["POST", "/", q, canon_h, ";".join(names), payload])
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(SECRET.encode(), sts.encode(), hashlib.sha256).hexdigest()
    return "ACS3-HMAC-SHA256 Credential=LTAIfuzz,SignedHeaders=%s,Signature=%s" % (";".join(names), sig)


def form(pairs):
    return "&".join("%s=%s" % (urllib.parse.quote_plus(k), urllib.parse.quote_plus(v)) for k, v in pairs)


date = iso(NOW)
qp = [("RegionId", "cn-hangzhou"), ("ImageId.1", "m-abc"), ("Tag.1.Key", "k"), ("Tag.1.Value", "v w"), ("Date", date)]
put("alibaba_auth", "v3-signed.txt", "\n".join([acs3("ecs.aliyuncs.com", qp, date), "ecs.aliyuncs.com", form(qp), ""]))


def v1(method, pairs):
    enc = sorted((pct(k), pct(v)) for k, v in pairs)
    canonical = "&".join("%s=%s" % kv for kv in enc if kv[0] != "Signature")
    sts = "%s&%%2F&%s" % (method, pct(canonical))
    return base64.b64encode(hmac.new((SECRET + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()


p1 = [("Action", "DescribeImages"), ("Version", "2014-05-26"), ("AccessKeyId", "LTAIfuzz"),
      ("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0"), ("SignatureNonce", "n-1"),
      ("Timestamp", date), ("RegionId", "cn-hangzhou"), ("ImageId", "m-abc*~ ")]
p1.append(("Signature", v1("POST", p1)))
put("alibaba_auth", "v1-signed.txt", "\n".join(["", "ecs.aliyuncs.com", form(p1[:4]), form(p1[4:])]))
put("alibaba_auth", "v1-expired.txt", "\n".join(["", "h", form([("Timestamp", iso(NOW - 3600)), ("Signature", "AAAA")]), ""]))

# ------------------------------------------------------------------ parameters
put("tencent_params", "get-query.txt", b"\x00" + b"Filters.0.Name=image-type&Filters.0.Values.0=PRIVATE_IMAGE&Filters.0.Values.1=SHARED_IMAGE&ImageIds.0=img-1&ImageIds.2=img%2D3&Limit=10&DryRun=True&Offset=+5")
put("tencent_params", "post-json.txt", b"\x01" + b'{"Filters":[{"Name":"image-id","Values":["img-1","img-2"]}],"ImageIds":["img-1"],"Limit":10,"DryRun":false,"InstanceType":"S5.SMALL1","Nested":{"A":[1,null,{"B":"c"}]}}')
put("alibaba_params", "query-and-form.txt", "RegionId=cn-hangzhou&ImageId.1=m-1&ImageId.2=m-2&ImageId.10=m-10&DryRun=true\nTag.1.Key=env&Tag.1.Value=prod&Tag.2.Key=team&Tag.2.Value=a+b%21&PageSize=50&Force=False&Empty=")

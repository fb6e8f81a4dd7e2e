#!/usr/bin/env bash
# Installs, idempotently, the official API clients the end-to-end tests use as oracles into
# a virtualenv at .cache/venv: Tencent Cloud's Python SDK (common + CVM + CBS) and tccli, and
# Alibaba Cloud's two Python SDKs for ECS 2014-05-26 — the current Tea/Darabonba one
# (alibabacloud-ecs20140526 with its openapi/tea/credentials core) and the legacy one
# (aliyun-python-sdk-ecs with aliyun-python-sdk-core) — pinned to the versions the references
# were checked against (all exist on PyPI).
# Fails loudly if anything is missing or not at its pinned version afterwards.
#
# Note: tccli 3.1.189.1 depends on the all-products `tencentcloud-sdk-python` (3.1.195),
# which ships its own copy of tencentcloud/cvm and tencentcloud/cbs. The check below makes
# sure the files on disk are byte-identical to the pinned -cvm / -cbs wheels' (pip's RECORD
# hashes), so the tests exercise the pinned client code.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${IKON_VENV:-.cache/venv}
PINS=(
  tencentcloud-sdk-python-common==3.1.195
  tencentcloud-sdk-python-cvm==3.1.178
  tencentcloud-sdk-python-cbs==3.1.175
  tccli==3.1.189.1
  alibabacloud-ecs20140526==7.11.8
  alibabacloud-tea-openapi==0.4.6
  darabonba-core==1.0.9
  alibabacloud-tea==0.4.3
  alibabacloud-tea-util==0.3.15
  alibabacloud-credentials==1.0.12
  aliyun-python-sdk-ecs==4.24.83
  aliyun-python-sdk-core==2.16.1
)
marker="$VENV/.ikon-pins"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ "$(cat "$marker" 2>/dev/null)" != "${PINS[*]}" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
  echo "${PINS[*]}" > "$marker"
fi
"$VENV/bin/python" - "${PINS[@]}" <<'PY' || { echo "install-api-clients: the pinned clients are not in place" >&2; exit 1; }
import base64, hashlib, importlib.metadata as md, os, sys
bad = []
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        bad.append("%s is not installed" % name)
        continue
    if have != want:
        bad.append("%s is %s, pinned %s" % (name, have, want))
for name in ("tencentcloud-sdk-python-cvm", "tencentcloud-sdk-python-cbs", "tencentcloud-sdk-python-common"):
    dist = md.distribution(name)
    for f in dist.files or []:
        # tencentcloud/__init__.py only holds the version string every tencentcloud wheel writes.
        if not str(f).endswith(".py") or not f.hash or str(f) == "tencentcloud/__init__.py":
            continue
        path = dist.locate_file(f)
        data = open(path, "rb").read() if os.path.exists(path) else None
        digest = data is not None and base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest != f.hash.value:
            bad.append("%s differs from the pinned %s wheel" % (f, name))
import tencentcloud.cvm.v20170312.cvm_client, tencentcloud.cbs.v20170312.cbs_client, tencentcloud.common.sign  # noqa
import alibabacloud_ecs20140526.client, alibabacloud_tea_openapi.models, aliyunsdkcore.client  # noqa
import aliyunsdkecs.request.v20140526.DescribeImagesRequest  # noqa
for b in bad:
    print("install-api-clients:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
"$VENV/bin/tccli" --version >/dev/null || { echo "install-api-clients: tccli does not run" >&2; exit 1; }

#!/usr/bin/env bash
# End-to-end tests of the Alibaba ECS 2014-05-26 dialect: the current Tea SDK
# (alibabacloud-ecs20140526, V3 and V1 signatures) and the legacy SDK
# (aliyun-python-sdk-ecs, V1) against a real `ikon serve` on SQLite.
# Creates its own venv (.cache/venv-ali); does not touch scripts/install-api-clients.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.cache/venv-ali
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import alibabacloud_ecs20140526, aliyunsdkecs' 2>/dev/null; then
  "$venv/bin/pip" install -q alibabacloud-ecs20140526 aliyun-python-sdk-ecs
fi
cargo build -q -p ikon-cli --locked
target=${CARGO_TARGET_DIR:-$PWD/target}
export IKON_BIN="$target/debug/ikon"
[ -x "$IKON_BIN" ] || { echo "e2e-alibaba: $IKON_BIN was not built" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "e2e-alibaba: qemu-img is needed to make a test image" >&2; exit 1; }
# Proxies would intercept the SDKs' loopback calls.
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
exec "$venv/bin/python" -m unittest -v tests/e2e-alibaba/test_alibaba.py

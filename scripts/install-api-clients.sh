#!/usr/bin/env bash
# Installs, idempotently, the official API clients the end-to-end tests use as oracles into
# a virtualenv at .cache/venv: Tencent Cloud's Python SDK (common + CVM + CBS) and tccli,
# pinned to the versions the reference was checked against. Fails loudly if anything is
# missing afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${IKON_VENV:-.cache/venv}
PINS=(
  tencentcloud-sdk-python-common==3.1.195
  tencentcloud-sdk-python-cvm==3.1.178
  tencentcloud-sdk-python-cbs==3.1.175
  tccli==3.1.189.1
)
marker="$VENV/.ikon-pins"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if [ "$(cat "$marker" 2>/dev/null)" != "${PINS[*]}" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
  echo "${PINS[*]}" > "$marker"
fi
"$VENV/bin/python" -c 'import tencentcloud.cvm.v20170312.cvm_client, tencentcloud.cbs.v20170312.cbs_client, tencentcloud.common.sign' \
  || { echo "install-api-clients: the Tencent SDK is not importable" >&2; exit 1; }
"$VENV/bin/tccli" --version >/dev/null || { echo "install-api-clients: tccli does not run" >&2; exit 1; }

#!/usr/bin/env bash
# A real browser for the console tests: Debian's chromium driven by Playwright for Python in
# the project's venv (.cache/venv, made by scripts/install-api-clients.sh). Playwright cannot
# download its own browser builds here: the tests launch /usr/bin/chromium with
# executable_path (and --no-sandbox, as they run as root). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v chromium >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null || { echo "install-browser: chromium could not be installed" >&2; exit 1; }
VENV=.cache/venv
[ -x "$VENV/bin/python" ] || bash scripts/install-api-clients.sh
"$VENV/bin/python" -c 'import playwright' 2>/dev/null || "$VENV/bin/pip" install -q 'playwright==1.49.1'
"$VENV/bin/python" -c 'import playwright' || { echo "install-browser: playwright is missing" >&2; exit 1; }

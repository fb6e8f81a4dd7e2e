#!/usr/bin/env bash
# cargo-deny over the whole dependency tree: licences, bans (wildcards; duplicate versions
# are reported) and sources, with deny.toml. Installs cargo-deny on first use (a release
# build: several minutes on 2 cores, hence not part of the test command, which runs the
# quicker scripts/check-deps.py). Advisories are not checked: the RustSec database is fetched
# from GitHub, which this machine cannot reach.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
  cargo install --locked cargo-deny
fi
cargo deny --version
cargo deny check licenses bans sources

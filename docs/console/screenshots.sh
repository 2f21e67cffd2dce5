#!/usr/bin/env bash
# Retakes the console screenshots (docs/console/*.png, shown in README "Console"):
# builds the binary, installs tests/browser's npm packages, and runs
# docs/console/screenshots.mjs, which starts the binary on a temp SQLite database
# with made-up demo data and photographs the pages in Debian's Chromium
# (/usr/bin/chromium: apt-get install chromium). Run by hand from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --locked --bin custodian
(cd tests/browser && npm ci --no-audit --no-fund)
timeout 300 node docs/console/screenshots.mjs

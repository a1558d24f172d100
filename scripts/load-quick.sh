#!/usr/bin/env bash
# Quick load check for CI: the real companion-server binary (debug build) on loopback with a
# fresh SQLite file, 8 virtual users for ~3 s of whole desktop QR logins (device-key method,
# then the card method), then the server's database is checked: every completed login has
# exactly one consumed rendezvous, one session and one audited right code, nothing extra, and
# nothing is left half-way. No timing assertion. Exit 1 on any failed, lost, duplicated or
# stuck login.
#
#   bash scripts/load-quick.sh
#
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q -p companion-server -p cie-bench --bin companion-server --bin companion-load
target="${CARGO_TARGET_DIR:-target}"
"$target/debug/companion-load" --quick --server "$target/debug/companion-server"

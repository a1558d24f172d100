#!/usr/bin/env bash
# The main job: `cie-companion demo` runs the three login flows end to end on this machine:
# the reference server on loopback (real TLS, pinned key, embedded SQLite file), the virtual
# CIE, and the phone app's own API (phone-tap login, desktop QR with the code-back, app
# approval with a device key). Extra arguments go to `demo`, e.g.
# `bash scripts/demo.sh --reader pcsc --card-ca cie-ca.pem` for a real card in a PC/SC reader.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Only what the cli needs to build and run (PC/SC headers, libnfc build tools).
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_cli_deps

cargo run --release -q -p cie-companion-cli -- demo "$@"
